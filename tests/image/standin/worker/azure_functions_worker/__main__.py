# TEST FIXTURE: what `python -m azure_functions_worker` runs, as worker.py re-executes it on Azure.
from azure_functions_worker import main

main.main("azure_functions_worker")
