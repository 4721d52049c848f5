"""One trainer at a time, stopped the way `dynopool train` wants to be stopped: shared by
experiments/reproduce, seg_scenes and bf16_parity (Python 3 standard library only).

Each trainer runs in its own session, so that a Ctrl-C at the terminal reaches the script
only; the script passes each SIGINT, SIGTERM or SIGHUP on to the trainer once (the first makes
the trainer finish its step, save its checkpoint and exit; a second stops it at once, as
`dynopool train` does).  A SIGHUP reaches the trainer as SIGTERM (which it handles like
Ctrl-C).  Plain subprocess.run would instead kill the trainer a quarter of a second after a
Ctrl-C, before it has saved.
"""
import signal
import subprocess
import sys


class Stop(Exception):
    """Raised by Runner when a signal came while no trainer was running, or before the next."""


class Runner:
    def __init__(self, name):
        self.name = name
        self.child = None
        self.stopping = False
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, self.on_signal)

    def on_signal(self, signum, frame):
        if not self.stopping:
            print("\n%s: %s: stopping after the trainer has saved (again to stop at once)"
                  % (self.name, signal.Signals(signum).name), file=sys.stderr, flush=True)
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            try:
                self.child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)
            except ProcessLookupError:
                pass
        else:
            raise Stop()

    def run(self, cmd, cwd=None):
        """Exit status of CMD (run in cwd); Stop when a signal has already come."""
        if self.stopping:
            raise Stop()
        self.child = subprocess.Popen(cmd, cwd=cwd, start_new_session=True)
        while True:
            try:
                rc = self.child.wait()
                break
            except Stop:
                continue
        self.child = None
        return rc
