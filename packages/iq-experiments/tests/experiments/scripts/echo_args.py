"""Records its exact argv (and a chosen environment variable) into ``<outputpath>/argv.json``; accepts anything.

With ``--mlfuri http://...`` it also logs the metric ``live_metric`` = 42 into ``--mlfrunid`` through the tracking
server's REST API (no mlflow import needed).
"""

import json
import os
import sys

argv = sys.argv[1:]
out = argv[argv.index("--outputpath") + 1]
listing = os.listdir(out)
with open(os.path.join(out, "argv.json"), "w") as fh:
    json.dump({"argv": argv, "env": os.environ.get("ECHO_ENV", ""), "outputpath_listing": listing}, fh)
if "--mlfrunid" in argv and argv[argv.index("--mlfuri") + 1].startswith("http"):
    import time
    import urllib.request

    body = {
        "run_id": argv[argv.index("--mlfrunid") + 1],
        "key": "live_metric",
        "value": 42.0,
        "timestamp": int(time.time() * 1000),
        "step": 0,
    }
    req = urllib.request.Request(
        argv[argv.index("--mlfuri") + 1].rstrip("/") + "/api/2.0/mlflow/runs/log-metric",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=30).read()
