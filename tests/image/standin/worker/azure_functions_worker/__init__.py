"""TEST FIXTURE: the stand-in of the Python worker's package (up to 3.12); main.py serves it."""
