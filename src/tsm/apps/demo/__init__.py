"""``tsm demo``: TSN, TSM and online TSM trained side by side on a task that needs time.

Importing it is light: Lightning loads only in the worker processes that train.
"""

from tsm.apps.demo.run import run_demo
from tsm.apps.demo.settings import DEMO_MODELS, HELP, QUICK, DemoSettings

__all__ = ["DEMO_MODELS", "HELP", "QUICK", "DemoSettings", "run_demo"]
