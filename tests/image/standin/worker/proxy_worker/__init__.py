"""TEST FIXTURE: the stand-in of the 3.13 proxy worker; start_worker.start() serves the host."""
