"""TEST FIXTURE: the stand-in of azure_functions_runtime (3.13), which proxy_worker imports."""
