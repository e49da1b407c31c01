#!/usr/bin/env python3
"""The console in a real browser: headless Chromium driven by Selenium.

    Scripts/browser-check.py [--binary .build/debug/linear-oauth] [--screenshots .build/browser]

Starts `linear-oauth serve --emulator` in a fresh temporary folder on a free loopback port, then:
opens /, is sent to sign-in, signs in with the development API key, sees the getting-started
panel, installs through the emulator's consent page (choosing a workspace), sees the installation
in the console, refreshes it, revokes it (through the confirmation page) and sees it gone. Every
step saves a screenshot under --screenshots. Fails on any JavaScript console message at warning
level or above, on any request that failed or was answered with 4xx/5xx, and on any step that
does not show what it should. Exit status 0 on success, 1 on a failure, 2 when Chromium,
chromedriver or Selenium is missing (`.ci/run` installs them).
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def fail(message):
    print(f"browser-check: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/debug/linear-oauth")
    parser.add_argument("--screenshots", default=".build/browser")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    shots = os.path.abspath(args.screenshots)
    os.makedirs(shots, exist_ok=True)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        print("browser-check: selenium is not installed (pip install selenium)", file=sys.stderr)
        sys.exit(2)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        print("browser-check: chromium and chromedriver are needed (apt-get install chromium chromium-driver)", file=sys.stderr)
        sys.exit(2)

    folder = tempfile.mkdtemp(prefix="linear-oauth-browser-")
    port = free_port()
    log = open(os.path.join(folder, "serve.log"), "w")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINEAR_", "DATABASE_URL"))}
    serve = subprocess.Popen([binary, "serve", "--emulator", "--port", str(port)], cwd=folder, env=env,
                             stdout=subprocess.PIPE, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    driver = None
    steps = []
    try:
        deadline = time.time() + args.timeout
        for line in serve.stdout:
            if line.startswith("linear-oauth listening on "):
                break
            if time.time() > deadline:
                fail("serve did not start")
        else:
            fail("serve exited before listening; see " + log.name)
        api_key = open(os.path.join(folder, ".linear-oauth-dev", "api-key")).read().strip()

        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        driver.set_page_load_timeout(args.timeout)
        wait = WebDriverWait(driver, args.timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

        def shot(name, width=1280):
            driver.set_window_size(width, 900)
            driver.save_screenshot(os.path.join(shots, f"{len(steps) + 1:02d}-{name}.png"))
            steps.append(name)

        def expect_text(text, where):
            try:
                wait.until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)
            except Exception:
                fail(f"{where}: the page does not show {text!r} ({driver.current_url})")

        def click(by, value, then=None):
            """Clicks, and when `then` is given waits for a new page whose URL contains it."""
            old = driver.find_element(By.TAG_NAME, "html")
            element = wait.until(lambda d: d.find_element(by, value))
            element.click()
            if then is not None:
                def arrived(d):
                    try:
                        old.tag_name
                        return False
                    except StaleElementReferenceException:
                        pass
                    except WebDriverException as error:
                        # Mid-navigation Chromium may answer "Node with given id does not belong to
                        # the document" instead of a stale reference: the old page is gone all the same.
                        if "does not belong to the document" not in str(error):
                            raise
                    return then in d.current_url and d.execute_script("return document.readyState") == "complete"
                wait.until(arrived)

        # 1. The console needs a session: / goes to sign-in.
        driver.get(base + "/")
        wait.until(lambda d: d.current_url.endswith("/console/sign-in"))
        expect_text("Sign in", "sign-in")
        shot("sign-in")
        # A wrong key is refused.
        driver.find_element(By.ID, "api_key").send_keys("not-the-key")
        click(By.CSS_SELECTOR, "form button[type=submit]", then="/console/sign-in")
        expect_text("not one of the service's API keys", "a wrong key")
        driver.find_element(By.ID, "api_key").send_keys(api_key)
        click(By.CSS_SELECTOR, "form button[type=submit]", then=base + "/")
        expect_text("Getting started", "the overview in development")
        shot("overview-empty")
        cookie = driver.get_cookie("linear_oauth_session")
        if not cookie or not cookie.get("httpOnly") or cookie.get("sameSite") != "Strict":
            fail(f"the session cookie is not HttpOnly and SameSite=Strict: {cookie}")

        # 2. Install through the emulator's consent page, choosing a workspace.
        click(By.LINK_TEXT, "Install in a workspace", then="/oauth/authorize")
        wait.until(lambda d: "Linear emulator" in d.title)
        expect_text("Choose the workspace", "the emulator's consent page")
        shot("consent")
        click(By.CSS_SELECTOR, "button[value=approve]", then="/oauth/callback")
        expect_text("Installed", "the install's success page")
        for text in ["org-acme", "acme", "linear-oauth token org-acme"]:
            expect_text(text, "the success page")
        shot("installed")
        # A reload of the used callback says it already completed.
        driver.refresh()
        expect_text("already completed", "a reload of the callback")

        # 3. See it in the console.
        click(By.LINK_TEXT, "open the console", then=base + "/")
        expect_text("Acme (emulated)", "the overview after the install")
        shot("overview")
        click(By.LINK_TEXT, "Installations", then="/console/installations")
        expect_text("org-acme", "the installations page")
        driver.find_element(By.ID, "q").send_keys("ACME")
        click(By.CSS_SELECTOR, "form.search button", then="q=ACME")
        expect_text("Acme (emulated)", "a search")
        shot("installations")
        click(By.LINK_TEXT, "Acme (emulated)", then="/console/installations/org-acme")
        expect_text("Organization id", "the installation's page")
        shot("installation")
        shot("installation-phone", width=390)

        # 4. Refresh it.
        click(By.XPATH, "//button[normalize-space()='Refresh now']", then="done=refreshed")
        expect_text("Refreshed", "after a refresh")
        shot("refreshed")

        # 5. Revoke it, through the confirmation page, and see it gone.
        click(By.PARTIAL_LINK_TEXT, "Revoke", then="/revoke")
        expect_text("Revoke and delete", "the confirmation page")
        shot("revoke-confirm")
        click(By.XPATH, "//button[normalize-space()='Revoke and delete']", then="done=revoked")
        expect_text("Revoked", "after the revoke")
        if "org-acme" in driver.find_element(By.TAG_NAME, "body").text:
            fail("the revoked installation is still listed")
        shot("revoked")
        click(By.LINK_TEXT, "Events", then="/console/events")
        expect_text("revoke", "the events page")
        shot("events")

        # 6. Sign out: the console is closed again.
        click(By.XPATH, "//button[normalize-space()='Sign out']", then="/console/sign-in")
        driver.get(base + "/console/installations")
        wait.until(lambda d: d.current_url.endswith("/console/sign-in"))

        # No console message at warning or above, no failed request, no 4xx/5xx.
        problems = []
        for entry in driver.get_log("browser"):
            message = entry.get("message", "")
            # The wrong key was sent on purpose: its 401 is the one refusal expected.
            if re.search(r"/console/sign-in - Failed to load resource: the server responded with a status of 401", message):
                continue
            if entry.get("level") in ("WARNING", "SEVERE"):
                problems.append(f"console: {message}")
        expected_refusal = {"/console/sign-in"}  # the wrong key on purpose: 401
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.loadingFailed":
                params = message.get("params", {})
                if params.get("canceled"):
                    continue
                problems.append(f"request failed: {params.get('errorText')}")
            elif message.get("method") == "Network.responseReceived":
                response = message["params"]["response"]
                path = re.sub(r"^https?://[^/]+", "", response["url"]).split("?")[0]
                if response["status"] >= 400 and not (path in expected_refusal and response["status"] == 401):
                    problems.append(f"HTTP {response['status']} for {path}")
        if problems:
            fail("; ".join(problems))
        print(f"browser-check: ok: {len(steps)} screenshots in {shots}: " + ", ".join(steps))
    finally:
        if driver is not None:
            driver.quit()
        serve.terminate()
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
