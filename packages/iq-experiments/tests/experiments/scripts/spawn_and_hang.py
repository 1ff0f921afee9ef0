"""Starts a grandchild that sleeps, appends both pids to ``$PIDS_FILE``, then hangs."""

import os
import subprocess
import sys
import time

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(os.environ["PIDS_FILE"], "a") as fh:
    fh.write(f"{os.getpid()} {child.pid}\n")
print("hanging", flush=True)
time.sleep(300)
