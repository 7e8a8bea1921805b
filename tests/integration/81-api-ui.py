#!/usr/bin/env python3
"""The web UI in headless Chromium, driven over the DevTools protocol (--remote-debugging-pipe), for
tests/integration/81-api-ui.sh.  Standard library only.

Usage: 81-api-ui.py URL SOCKET SHOTS_DIR HOST RUNNING_ID PENDING_ID STOP_CMD...
Loads each page, checks what it shows against the API (URL, read-only), saves screenshots in SHOTS_DIR,
creates an instance through SOCKET (as root) while the apps page is open and waits for its row, runs
STOP_CMD while the running instance's page is open and waits for its trace entry to appear live.  Fails
(exit 1) on any console error, uncaught exception or failed resource load.
"""
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

URL, SOCKET, SHOTS, HOST, RUNNING, PENDING = sys.argv[1:7]
STOP_CMD = sys.argv[7:]
failures = []


def fail(msg):
    print("FAIL: " + msg, flush=True)
    failures.append(msg)


def note(msg):
    print("--- " + msg, flush=True)


def api(path):
    with urllib.request.urlopen(URL + path, timeout=10) as r:
        return json.load(r)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def create(app, manifest):
    """POST /instance/<app> on the Unix socket (root): the new instance ids."""
    c = UnixHTTP(SOCKET)
    c.request("POST", "/instance/" + app, body=json.dumps(manifest))
    r = c.getresponse()
    body = json.load(r)
    if r.status != 201:
        raise RuntimeError("create %s: %s %s" % (app, r.status, body))
    return body["instances"]


class Browser:
    """Chromium with the DevTools protocol on fds 3 (commands in) and 4 (answers out), NUL-separated."""

    def __init__(self, profile):
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()

        def child():  # fds 3 and 4, inheritable (a pipe may already be 3 or 4, close-on-exec)
            a, b = os.dup(cmd_r), os.dup(resp_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        argv = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
                "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
                "--window-size=1280,900", "about:blank"]
        self.proc = subprocess.Popen(argv, preexec_fn=child, close_fds=False, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(SHOTS, "chromium.log"), "w"))
        os.close(cmd_r)
        os.close(resp_w)
        self.next_id = 0
        self.answers = {}
        self.events = []
        self.cv = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf = b""
        while True:
            chunk = os.read(self.resp_r, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.cv:
                    if "id" in msg:
                        self.answers[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                        self.on_event(msg)
                    self.cv.notify_all()

    def on_event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            fail("console %s: %s" % (p["type"], " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            fail("uncaught exception: %s" % (d.get("exception", {}).get("description") or d.get("text")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            fail("console log error: %s %s" % (e.get("text"), e.get("url", "")))

    def send(self, method, params=None, session=None, timeout=30):
        with self.cv:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        with self.cv:
            while mid not in self.answers:
                if time.time() > end or self.proc.poll() is not None:
                    raise RuntimeError("no answer to %s" % method)
                self.cv.wait(0.5)
            ans = self.answers.pop(mid)
        if "error" in ans:
            raise RuntimeError("%s: %s" % (method, ans["error"]))
        return ans.get("result", {})

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Page:
    def __init__(self, b):
        self.b = b
        tid = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.s = b.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        for d in ("Runtime", "Log", "Page"):
            b.send(d + ".enable", session=self.s)

    def eval(self, expr):
        r = self.b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                        session=self.s)
        if "exceptionDetails" in r:
            raise RuntimeError("evaluate %s: %s" % (expr, r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def wait(self, expr, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            v = self.eval(expr)
            if v:
                return v
            time.sleep(0.1)
        return None

    def go(self, hash_, what):
        """Navigate to URL/#hash and wait until the page says it is drawn (body[data-ready])."""
        gen = self.eval("document.body && document.body.dataset.ready || ''") or ""
        if self.eval("location.href") .startswith(URL):
            self.eval("location.hash = %s" % json.dumps(hash_))
        else:
            self.b.send("Page.navigate", {"url": URL + "/" + hash_}, session=self.s)
        if not self.wait("document.body && document.body.dataset.ready && document.body.dataset.ready !== %s"
                         % json.dumps(gen)):
            fail("%s: never drawn" % what)
        if self.eval("document.querySelectorAll('#main .err').length"):
            fail("%s shows an error: %s" % (what, self.eval("document.querySelector('#main .err').textContent")))

    def shot(self, name):
        time.sleep(0.3)  # let the CSS transitions settle
        data = self.b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=self.s)["data"]
        path = os.path.join(SHOTS, name + ".png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        note("screenshot %s" % path)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    b = Browser(tempfile.mkdtemp(prefix="chromium-", dir=SHOTS))
    try:
        run(Page(b))
    finally:
        b.close()
    return 1 if failures else 0


def run(p):
    enc = urllib.parse.quote

    note("overview: servers with capacity and usage, instance counts")
    p.go("#/", "overview")
    state = api("/state/")
    servers = api("/scheduler/servers")
    for st in ("running", "pending"):
        want = sum(1 for i in state if i["state"] == st)
        got = p.eval("document.getElementById('n-%s').textContent" % st)
        if str(want) != got:
            fail("overview: %s %s, the API says %d" % (st, got, want))
    row = p.eval("(() => { const r = document.querySelector('#servers tr[data-server=%s]'); return r && r.textContent; })()"
                 % json.dumps(HOST))
    if not row:
        fail("overview: no row for server %s" % HOST)
    else:
        srv = next(s for s in servers if s["name"] == HOST)
        for d in ("memory", "cpu", "disk"):
            if "%d / %d" % (srv["used"][d], srv["capacity"][d]) not in row:
                fail("overview: server %s %s not '%d / %d': %s" % (HOST, d, srv["used"][d], srv["capacity"][d], row))
        if "present" not in row:
            fail("overview: server %s not shown present: %s" % (HOST, row))
    p.shot("overview")

    note("apps and instances: every instance with the API's state")
    p.go("#/apps", "apps")
    shown = p.eval("Object.fromEntries([...document.querySelectorAll('#instances tr[data-instance]')]"
                   ".map(r => [r.dataset.instance, r.dataset.state]))")
    state = {i["name"]: i["state"] for i in api("/state/")}
    if shown != state:
        fail("apps: the page shows %s, the API says %s" % (shown, state))
    p.shot("apps")
    p.go("#/apps?state=pending", "apps filtered")
    shown = p.eval("[...document.querySelectorAll('#instances tr[data-instance]')].map(r => r.dataset.instance)")
    want = [n for n, s in state.items() if s == "pending"]
    if sorted(shown) != sorted(want):
        fail("apps?state=pending shows %s, want %s" % (shown, want))
    p.shot("apps-pending")

    note("apps and instances: a new instance appears live, and runs")
    p.go("#/apps?match=nobody.uilive", "apps of nobody.uilive")
    if not p.wait("document.getElementById('live').classList.contains('on')", 10):
        fail("the apps page never went live (event streams)")
    new = create("nobody.uilive", {"services": [{"name": "s", "command": "exec sleep 1000",
                                                 "restart": {"limit": 0, "interval": 60}}],
                                   "memory": "100M", "cpu": "5%", "disk": "100M"})[0]
    t0 = time.time()
    row = "document.querySelector('#instances tr[data-instance=%s]')" % json.dumps(new)
    if not p.wait("!!" + row, 15):
        fail("apps: the new instance %s never appeared (page: %r, streams %s, API: %s)" % (
            new, p.eval("document.getElementById('instances').innerText"),
            p.eval("streams.map(s => s.readyState + ' ' + s.url + ' ' + s.sowDone)"),
            api("/state/?match=" + enc(new, safe=""))))
    else:
        note("%s appeared after %.2f s" % (new, time.time() - t0))
    if not p.wait("(%s || {dataset: {}}).dataset.state === 'running'" % row, 30):
        fail("apps: %s never shown running (API: %s)" % (new, api("/state/?match=" + enc(new, safe=""))))
    p.shot("apps-live")

    note("a pending instance: the scheduler's explanation")
    p.go("#/instance/" + enc(PENDING, safe=""), "pending instance")
    why = api("/scheduler/explain/" + enc(PENDING, safe=""))["explain"]
    got = p.eval("(document.getElementById('explain') || {}).textContent || ''")
    if why not in got:
        fail("pending instance: explanation '%s', the API says '%s'" % (got, why))
    p.shot("instance-pending")

    note("a running instance: its trace as a timeline, a new entry live")
    p.go("#/instance/" + enc(RUNNING, safe=""), "running instance")
    events = api("/trace/" + enc(RUNNING, safe=""))["events"]
    got = p.eval("[...document.querySelectorAll('#trace li')].map(l => l.dataset.type)")
    want = [e["event_type"] for e in events]
    if got != want[:len(got)] or len(got) < len(want) - 1:
        fail("trace timeline %s, the API says %s" % (got, want))
    if p.eval("document.querySelector('#state .badge').textContent") != "running":
        fail("running instance not shown running")
    # the log tail: a reader is asked for a token; with root's, the container's log follows
    if not p.wait("!!document.getElementById('usetoken')", 10):
        fail("instance page: no token prompt for the log (shows %r)" % p.eval("document.getElementById('logctl').innerText"))
    p.eval("document.getElementById('token').value = %s; document.getElementById('usetoken').click()"
           % json.dumps(os.environ.get("TREADLE_UI_TOKEN", "")))
    if not p.wait("!!document.getElementById('logsvc')", 10):
        fail("instance page: no log panel with the token (shows %r)" % p.eval("document.getElementById('logctl').innerText"))
    else:
        p.eval("const s = document.getElementById('logsvc'); s.value = '/sys/container'; s.dispatchEvent(new Event('change'))")
        if not p.wait("document.getElementById('log').textContent.includes('starting the container')", 10):
            fail("instance page: the container's log never shown (%r)" % p.eval("document.getElementById('log').textContent"))
    if p.eval("document.querySelectorAll('#endpoints tr').length") < 2:
        fail("instance page: no endpoints table")
    p.shot("instance-running")
    # the stream is open once the page says live
    if not p.wait("document.getElementById('live').classList.contains('on')", 10):
        fail("the page never went live (event stream)")
    n0 = p.eval("document.querySelectorAll('#trace li').length")
    subprocess.run(STOP_CMD, check=True, stdout=subprocess.DEVNULL)
    t0 = time.time()
    if not p.wait("[...document.querySelectorAll('#trace li')].some(l => l.dataset.type === 'deleted')", 15):
        fail("the 'deleted' trace entry never appeared live (page has %s)" %
             p.eval("[...document.querySelectorAll('#trace li')].map(l => l.dataset.type)"))
    else:
        note("'deleted' appeared live after %.2f s" % (time.time() - t0))
    if p.eval("document.location.reload === undefined"):
        pass
    n1 = p.eval("document.querySelectorAll('#trace li').length")
    if n1 <= n0:
        fail("no new trace entry live")
    # what the page shows now is what the API says (no reload)
    p.wait("false", 1.5)
    got = p.eval("[...document.querySelectorAll('#trace li')].map(l => l.dataset.type)")
    want = [e["event_type"] for e in api("/trace/" + enc(RUNNING, safe=""))["events"]]
    if not set(got) <= set(want) or "deleted" not in want:
        fail("live trace %s, the API says %s" % (got, want))
    p.shot("instance-live")


if __name__ == "__main__":
    sys.exit(main())
