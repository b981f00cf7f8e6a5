#!/usr/bin/env python3
"""tonnex-web end to end, in a real headless Chromium (Selenium).

    scripts/web_test.py BIN_DIR

Starts a venue on config/demo/ (fresh journal), settlement following it and
tonnex-web on both, then, as users would:

- a buyer logs in and sees its coverage and a certificate after a trade;
- the buyer uploads an inventory and a later order is routed against it;
- a certificate verifies, and a tampered copy is detected;
- an operator halts an instrument in the console, and an order is refused;
- access control: every buyer URL with another buyer's cookie (404), with
  none (login or 401), the operator's pages with a buyer's cookie (404);
  HttpOnly/SameSite cookies, CSRF refusals, login rate limiting.

Screenshots of each page go to target/web-screenshots/. Exits non-zero on
the first failed check, naming it.
"""

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOTS = os.path.join(ROOT, "target", "web-screenshots")
CLIENT = os.path.join(ROOT, "scripts", "client.py")
NBR, GEN = 0, 2


def check(condition, what):
    if not condition:
        raise SystemExit(f"web test FAILED: {what}")
    print(f"ok: {what}", flush=True)


def start(args, log):
    """Starts a process and returns it with its ready line's fields."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    line = process.stdout.readline()
    if not line.startswith("ready "):
        raise SystemExit(f"{args[0]} did not start: {line!r}; see {log}")
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])
    return process, fields


def order(venue, account, instrument, side, price, qty, scope=()):
    """One order through the reference client; the outcome line's name and reason."""
    args = [sys.executable, CLIENT, "--venue", venue, "--account", str(account),
            "--secret", f"demo-{account}", "--instrument", str(instrument), "--side", side,
            "--price-ticks", str(price), "--qty", str(qty)]
    for line in scope:
        args += ["--scope", line]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    # The login replays the account's earlier reports: the last outcome is this order's.
    outcomes = [line for line in out.splitlines()
                if re.match(r"seq=\d+ (OrderAccepted|OrderRejected|OrderHeld) ", line)]
    if not outcomes:
        raise SystemExit(f"no outcome for the order: {out}")
    name = outcomes[-1].split()[1]
    reason = re.search(r"'reason': '([A-Z_]+)'", outcomes[-1])
    return name, reason.group(1) if reason else None


class Http:
    """A cookie-keeping HTTP client that never follows redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), self.NoRedirect)

    def request(self, path, data=None, headers=None, method=None):
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {},
                                     method=method)
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def login(self, body):
        status, headers, text = self.request(
            "/api/login", json.dumps(body).encode(), {"content-type": "application/json"})
        return status, headers, (json.loads(text) if text.startswith("{") else text)


def browser(work):
    """Chromium under Selenium, its profile in `work` (removed at the end)."""
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={os.path.join(work, 'chromium-profile')}")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.implicitly_wait(5)
    return driver


def navigate(driver, element):
    """Clicks `element` and waits until the page it leads to has replaced this
    one and finished loading. The old page is marked with a variable that the
    new one does not have; while the browser is between the two, the driver
    may answer with errors, which the wait ignores."""
    driver.execute_script("window.tonnexOldPage = true;")
    element.click()

    def arrived(d):
        return d.execute_script(
            "return window.tonnexOldPage === undefined && document.readyState === 'complete';")

    WebDriverWait(driver, 15, ignored_exceptions=(WebDriverException,)).until(arrived)


def shot(driver, name):
    os.makedirs(SHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def login(driver, web, kind, name, password):
    driver.get(web + "/login")
    if kind == "operator":
        driver.find_element(By.ID, "as-operator").click()
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    navigate(driver, driver.find_element(By.ID, "login"))


def logout(driver):
    navigate(driver, driver.find_element(By.ID, "logout"))


def main():
    bin_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release"))
    work = tempfile.mkdtemp(prefix="tonnex-web-test-")
    processes = []
    try:
        venue, ready = start([os.path.join(bin_dir, "tonnex-venue"), "run", "--config",
                              os.path.join(ROOT, "config/demo/venue.toml"), "--journal-dir",
                              os.path.join(work, "journal"), "--listen", "127.0.0.1:0",
                              "--fills-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                              "--metrics-listen", "127.0.0.1:0", "--market-data-listen", "127.0.0.1:0"], os.path.join(work, "venue.log"))
        processes.append(venue)
        entry = ready["order_entry"]
        settlement, _ = start([os.path.join(bin_dir, "tonnex-settlement"), "run", "--venue",
                               ready["fill_stream"], "--data-dir", os.path.join(work, "settlement"),
                               "--fill-key", "demo-settlement-key"],
                              os.path.join(work, "settlement.log"))
        processes.append(settlement)
        web_process, web_ready = start([os.path.join(bin_dir, "tonnex-web"), "--config",
                                        os.path.join(ROOT, "config/demo/venue.toml"), "--ledger",
                                        os.path.join(work, "settlement"), "--listen", "127.0.0.1:0",
                                        "--venue-admin", ready["admin"], "--venue-metrics",
                                        ready["metrics"]], os.path.join(work, "web.log"))
        processes.append(web_process)
        web = "http://" + web_ready["web"]

        # A trade: the seller's lot, bought by the recognised buyer (scope 3 cat. 1).
        check(order(entry, 2001, NBR, "sell", 2450, 10)[0] == "OrderAccepted", "the seller's offer rests")
        check(order(entry, 1001, NBR, "buy", 2600, 10, ["3:1:10"])[0] == "OrderAccepted",
              "the buyer's order is routed and accepted")
        api = Http(web)
        status, headers, body = api.login({"account": 1001, "password": "demo-1001"})
        check(status == 200 and body["ok"], "POST /api/login as buyer 1001")
        cookie = headers.get("Set-Cookie", "")
        check("HttpOnly" in cookie and "SameSite=Strict" in cookie, "the session cookie is HttpOnly and SameSite=Strict")
        deadline = time.time() + 60
        summary = {}
        while time.time() < deadline:
            summary = json.loads(api.request("/api/buyer/1001/summary")[2])
            if summary.get("retired_tonnes", 0) >= 10:
                break
            time.sleep(0.3)
        check(summary.get("retired_tonnes") == 10 and summary["reporting_year"] == 2026
              and summary["pathway"] == "recognised", f"the summary API after settlement: {summary}")

        driver = browser(work)
        try:
            # 1. The buyer's dashboard: coverage and a certificate.
            login(driver, web, "buyer", "1001", "demo-1001")
            check(driver.current_url.endswith("/buyer/1001"), "the buyer lands on its dashboard")
            coverage = driver.find_element(By.ID, "coverage").text
            check("%" in coverage and driver.find_element(By.ID, "retired").text.endswith("10 t"),
                  f"the dashboard shows coverage ({coverage!r}) and 10 t retired")
            check(driver.find_element(By.ID, "coverage-chart").is_displayed()
                  and driver.find_element(By.ID, "scope-chart").is_displayed(), "both charts are drawn")
            certificates = driver.find_element(By.ID, "certificates").text
            check("TNX-" in certificates, f"the certificate is listed: {certificates!r}")
            shot(driver, "buyer-dashboard")
            navigate(driver, driver.find_element(By.CSS_SELECTOR, "#certificates a.cert-html"))
            check("TNX-" in driver.page_source and "retire" in driver.page_source.lower(),
                  "the certificate page opens")
            shot(driver, "certificate")
            cert_url = driver.current_url + "/json"
            driver.get(web + "/buyer/1001")
            navigate(driver, driver.find_element(By.CSS_SELECTOR, "#past-orders a"))
            check("recognised" in driver.find_element(By.ID, "decision").text, "the order's decision page")
            shot(driver, "order-decision")
            status, _, text = api.request(cert_url[len(web):])
            check(status == 200, f"the certificate's JSON link answers ({cert_url}: {status})")
            certificate = json.loads(text)
            check(certificate["certificate_id"].startswith("TNX-"), "the certificate's JSON downloads")

            # 2. The carbon-accounting integration: no room in category 6 yet.
            outcome = order(entry, 1001, NBR, "buy", 2600, 5, ["3:6:5"])
            check(outcome == ("OrderRejected", "SCOPE_EXCEEDS_INVENTORY"),
                  f"before the upload, a category 6 order exceeds the inventory: {outcome}")
            driver.get(web + "/buyer/1001")
            navigate(driver, driver.find_element(By.ID, "upload-inventory"))
            area = driver.find_element(By.ID, "csv")
            area.clear()
            area.send_keys("account,reporting_year,scope,category,tonnes\n1001,2026,1,,20000\n"
                           "1001,2026,3,1,-3\n")
            navigate(driver, driver.find_element(By.ID, "upload"))
            outcome = driver.find_element(By.ID, "outcome").text
            check("Not accepted" in outcome and "line 3: tonnes: must not be negative" in outcome,
                  f"a bad row is refused naming it: {outcome!r}")
            shot(driver, "inventory-refused")
            area = driver.find_element(By.ID, "csv")
            area.clear()
            area.send_keys("account,reporting_year,scope,category,tonnes\n1001,2026,1,,20000\n"
                           "1001,2026,2,,8000\n1001,2026,3,1,40000\n1001,2026,3,4,6000\n"
                           "1001,2026,3,6,50000\n")
            navigate(driver, driver.find_element(By.ID, "upload"))
            outcome = driver.find_element(By.ID, "outcome").text
            check("Accepted" in outcome and "journal record" in outcome, f"the upload is journaled: {outcome!r}")
            shot(driver, "inventory-accepted")
            check(order(entry, 1001, NBR, "buy", 2000, 5, ["3:6:5"])[0] == "OrderAccepted",
                  "after the upload, the category 6 order is routed against it")
            driver.get(web + "/buyer/1001")
            scopes = driver.find_element(By.ID, "scopes").text
            check(re.search(r"S3 cat 6 50000 5 0 0", scopes) is not None,
                  f"the dashboard shows the uploaded category with 5 t claimed: {scopes!r}")
            # A bid below the pathway's floor waits for an attestation.
            check(order(entry, 1001, NBR, "buy", 1500, 2, ["3:1:2"])[0] == "OrderHeld",
                  "a bid below the floor is held")
            driver.get(web + "/buyer/1001")
            held = driver.find_element(By.ID, "held").text
            check("attestation" in held and "releases it" in held,
                  f"the dashboard says what releases the held order: {held!r}")
            shot(driver, "buyer-held")
            logout(driver)

            # 3. Verification: the certificate, then a tampered copy.
            driver.get(web + "/verify")
            driver.find_element(By.ID, "certificate").send_keys(json.dumps(certificate))
            navigate(driver, driver.find_element(By.ID, "verify"))
            verdict = driver.find_element(By.ID, "verdict").text
            check(verdict.startswith("VALID"), f"the certificate verifies: {verdict!r}")
            check("retirement" in driver.find_element(By.ID, "chain").text, "the chain is shown")
            shot(driver, "verify-valid")
            tampered = dict(certificate)
            tampered["trades"] = [dict(t, qty=t["qty"] + 1) for t in certificate["trades"]]
            driver.get(web + "/verify")
            driver.find_element(By.ID, "certificate").send_keys(json.dumps(tampered))
            navigate(driver, driver.find_element(By.ID, "verify"))
            verdict = driver.find_element(By.ID, "verdict").text
            problems = driver.find_element(By.ID, "problems").text
            check(verdict.startswith("NOT VALID") and "sha256 does not match" in problems,
                  f"a tampered certificate is detected: {problems!r}")
            shot(driver, "verify-tampered")
            status, _, text = Http(web).request("/api/verify", json.dumps(tampered).encode(),
                                                {"content-type": "application/json"}, "POST")
            answer = json.loads(text)
            check(status == 200 and answer["hash_ok"] is False and answer["ledger_ok"] is False,
                  "POST /api/verify says the same without a login")

            # 4. The operator console: halt an instrument, an order is refused.
            login(driver, web, "operator", "ops", "demo-ops-key")
            check(driver.current_url.endswith("/operator"), "the operator lands on the console")
            deadline = time.time() + 10
            while time.time() < deadline and driver.find_element(By.ID, "orders-per-s").text in ("…", ""):
                time.sleep(0.2)
            check(driver.find_element(By.ID, "orders-per-s").text not in ("…", "", "n/a"),
                  "the live panel reads the venue's metrics")
            instruments = driver.find_element(By.ID, "instruments").text
            check("24.5" in instruments, f"the console shows the last trade: {instruments!r}")
            compliance = driver.find_element(By.ID, "compliance").text
            check(re.search(r"1001 \d+: 2 t at 1500", compliance) is not None,
                  f"the console lists the held order: {compliance!r}")
            shot(driver, "operator-console")
            form = driver.find_element(By.ID, "halt-GEN-2023").find_element(By.XPATH, "..")
            form.find_element(By.NAME, "reason").send_keys("web test drill")
            navigate(driver, driver.find_element(By.ID, "halt-GEN-2023"))
            message = driver.find_element(By.ID, "message").text
            check(message.startswith("done") and "halted GEN-2023" in message, f"the halt is journaled: {message!r}")
            check("halted" in driver.find_element(By.ID, "instruments").text, "the console shows it halted")
            shot(driver, "operator-halted")
            check(order(entry, 3001, GEN, "sell", 500, 1) == ("OrderRejected", "INSTRUMENT_HALTED"),
                  "an order on the halted instrument is refused")
        finally:
            driver.quit()

        # 5. Access control and form security, over plain HTTP.
        other = ["/buyer/1002", "/buyer/1002/orders/1", "/buyer/1002/certificates/TNX-1",
                 "/buyer/1002/certificates/TNX-1/json", "/buyer/1002/inventory", "/operator"]
        for path in other:
            check(api.request(path)[0] == 404, f"buyer 1001's cookie on {path} is 404")
        check(api.request("/api/buyer/1002/summary")[0] == 404, "another buyer's summary API is 404")
        cert_path = f"/buyer/1001/certificates/{certificate['certificate_id']}"
        mine = ["/buyer/1001", "/buyer/1001/orders/1", cert_path, cert_path + "/json",
                "/buyer/1001/inventory"]
        for path in mine:
            status, headers, _ = Http(web).request(path)
            check(status == 303 and headers.get("Location") == "/login",
                  f"{path} without a session goes to the login page")
        check(Http(web).request("/api/buyer/1001/summary")[0] == 401, "the summary API without a session is 401")
        check(Http(web).request("/api/operator/live")[0] == 401, "the live panel API without a session is 401")
        ops = Http(web)
        check(ops.login({"operator": "ops", "password": "demo-ops-key"})[0] == 200, "operator API login")
        for path in mine[:2] + ["/api/buyer/1001/summary"]:
            check(ops.request(path)[0] == 404, f"the operator's cookie on {path} is 404")
        status, _, _ = api.request("/logout", b"csrf=wrong", {"content-type": "application/x-www-form-urlencoded"}, "POST")
        check(status == 403, "a form post with the wrong CSRF token is refused")
        upload = json.dumps({"reporting_year": 2026, "lines": [{"scope": 1, "tonnes": "1"}]}).encode()
        status, _, _ = api.request("/api/buyer/1001/inventory", upload, {"content-type": "application/json"}, "POST")
        check(status == 403, "the JSON upload without its X-CSRF-Token is refused")
        csrf = api.login({"account": 1001, "password": "demo-1001"})[2]["csrf"]
        bad = json.dumps({"reporting_year": 2026, "lines": [{"scope": 3, "category": 16, "tonnes": "1"}]}).encode()
        status, _, text = api.request("/api/buyer/1001/inventory", bad,
                                      {"content-type": "application/json", "x-csrf-token": csrf}, "POST")
        check(status == 422 and "lines[0].category" in text, f"the JSON upload names the bad line: {text}")
        guesser = Http(web)
        codes = [guesser.login({"account": 1003, "password": f"guess-{i}"})[0] for i in range(6)]
        check(codes[:5] == [401] * 5 and codes[5] == 429, f"login attempts are rate-limited: {codes}")
        check(guesser.login({"account": 1003, "password": "demo-1003"})[0] == 429,
              "even the right password waits out the limit")
        print(f"web test ok; screenshots in {os.path.relpath(SHOTS, ROOT)}/")
    finally:
        for process in processes:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
