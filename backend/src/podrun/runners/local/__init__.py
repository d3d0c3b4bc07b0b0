"""The local runner: each run in a bubblewrap sandbox on this host.

runner.py starts sandboxes (cold, or warm from the pool) and knows the host's interpreters, uids and
cgroups; bwrap.py builds bubblewrap's command; sandbox.py is one running sandbox.
"""

from podrun.runners.local.runner import LocalRunner
from podrun.runners.local.sandbox import LocalSandbox

__all__ = ["LocalRunner", "LocalSandbox"]
