# TEST FIXTURE: what `python -m proxy_worker` runs, as worker.py re-executes it on Azure.
from proxy_worker import start_worker

start_worker.start()
