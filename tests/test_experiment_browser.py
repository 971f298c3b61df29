"""The participant page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven
by Selenium against the experiment server on uvicorn, checked against what the database holds afterwards."""

import contextlib
import os
import re
import socket
import threading
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = pytest.mark.slow

DESKTOP = (1280, 900)
PHONE = (390, 844)
_PHASE = re.compile(r"^(Practice|Trial) (\d+) of (\d+)$")


# ---- the server and the browser -------------------------------------------------------------------------------
@contextlib.contextmanager
def serving(directory, db_url):
    """The experiment's app on uvicorn in a background thread, on a free loopback port: yields its base URL."""
    import uvicorn

    from metamers.experiments.server import create_app

    app = create_app(directory, db_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.store.engine.dispose()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """One headless Chromium for the module (each test serves on its own port: its own origin and storage)."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not os.access(program, os.X_OK):
            pytest.fail(f"{program} is missing: `make test` installs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as mp:  # Debian's driver and browser: Selenium Manager must not download any
        mp.setenv("SE_OFFLINE", "true")
        mp.setattr(SeleniumManager, "binary_paths", lambda *a, **k: pytest.fail("Selenium Manager was called"))
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium):
    """The module's Chromium; after each test, its console must hold no error (a script's, a CSP violation)."""
    chromium.get_log("browser")
    yield chromium
    viewport(chromium, *DESKTOP)
    errors = [
        e["message"]
        for e in chromium.get_log("browser")
        if e["level"] == "SEVERE" and "/favicon.ico" not in e["message"]
    ]
    assert not errors, errors


def viewport(driver, width, height):
    """Emulate a window of this size (a phone's, with its viewport meta honoured, when narrow)."""
    mobile = width < 600
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


# ---- reading and driving the page -----------------------------------------------------------------------------
_SNAPSHOT = """
const on = (id) => { const e = document.getElementById(id); return !!e && e.checkVisibility(); };
const shown = [...document.querySelectorAll("main > section")].filter((s) => !s.hidden).map((s) => s.id);
return {
  section: shown.join(","),
  error: on("error") ? document.getElementById("error-text").textContent : null,
  phase: document.getElementById("phase").textContent,
  answer: on("answer"),
  play: on("play") && !document.getElementById("play").disabled,
  picture: document.getElementById("picture").getAttribute("src"),
  feedback: document.getElementById("feedback").textContent,
  calibrated: !document.getElementById("calibration-done").disabled,
  hpCount: document.getElementById("hp-count").textContent,
  hpPlay: on("hp-play"),
  hpChoices: on("hp-choices"),
  focused: document.activeElement ? document.activeElement.id || document.activeElement.dataset.choice || "" : "",
};
"""


def snapshot(driver) -> dict:
    return driver.execute_script(_SNAPSHOT)


def wait_for(driver, what, ok, timeout=30.0) -> dict:
    """Poll the page until ``ok(snapshot)``; fail at once on the page's error screen, or after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        s = snapshot(driver)
        assert s["error"] is None, f"the page shows an error while waiting for {what}: {s['error']}"
        if ok(s):
            return s
        assert time.monotonic() < deadline, f"no {what} after {timeout} s; the page is at {s}"
        time.sleep(0.05)


def keys(driver, *text):
    """Type at whatever has the keyboard focus, as a person at a keyboard would."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*text).perform()


def press(driver, element_id, keyboard=False):
    """Click a button, or (keyboard) check that it has the focus and press Enter."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    if keyboard:
        s = wait_for(driver, f"the focus on #{element_id}", lambda s: s["focused"] == element_id, timeout=5)
        assert s["focused"] == element_id
        keys(driver, Keys.ENTER)
    else:
        driver.find_element(By.ID, element_id).click()


def open_page(driver, base, participant, keyboard=False):
    """Open the study link and go through consent to the instructions (or the calibration, for sounds)."""
    driver.get(f"{base}/?participant={participant}")
    wait_for(driver, "the consent form", lambda s: s["section"] == "consent")
    press(driver, "consent-yes", keyboard)


def pass_headphone_check(driver, exp, by_key=(2,)):
    """The volume calibration, then the six antiphase trials answered right (trials in ``by_key`` with 1/2/3 keys)."""
    from selenium.webdriver.common.by import By

    s = wait_for(driver, "the volume calibration", lambda s: s["section"] == "calibration")
    assert not s["calibrated"], "the check waits until the calibration noise has been played"
    driver.find_element(By.ID, "calibration-play").click()
    wait_for(driver, "the calibration noise to play", lambda s: s["calibrated"], timeout=10)
    driver.find_element(By.ID, "calibration-done").click()
    trials = exp["headphone_check"]["trials"]
    durations = []
    for k, sid in enumerate(trials):
        count = f"({k + 1} of {len(trials)})"
        s = wait_for(driver, f"headphone trial {count}", lambda s, c=count: s["hpCount"] == c and s["hpPlay"])
        assert not s["hpChoices"], "the answers must stay hidden until the tones have played"
        t0 = time.monotonic()
        driver.find_element(By.ID, "hp-play").click()
        wait_for(driver, f"the answers of headphone trial {count}", lambda s: s["hpChoices"], timeout=30)
        durations.append(time.monotonic() - t0)
        answer = exp["stimuli"][sid]["answer"]
        if k in by_key:
            keys(driver, answer)
        else:
            driver.find_element(By.CSS_SELECTOR, f'#hp-choices button[data-answer="{answer}"]').click()
    # each trial is three 1 s tones with two 0.5 s gaps: the answers come only once it has really played out
    assert min(durations) > 3.0, durations


def begin(driver, keyboard=False, resumed=False):
    """Leave the instructions (or, after a reload, the welcome back) for the next trial."""
    title = "Welcome back" if resumed else "How it works"

    def ready(s):
        return s["section"] == "instructions" and driver.find_element("id", "instructions-title").text == title

    wait_for(driver, f"the instructions ({title})", ready)
    press(driver, "instructions-go", keyboard)


class Participant:
    """Answers trials through the page, and remembers what it answered for the database to be checked against."""

    def __init__(self, driver, exp, list_index=0):
        self.driver, self.exp = driver, exp
        self.trials = exp["lists"][list_index]  # the participant's list: the server hands them out in turn
        self.practice = exp["practice"]
        self.given: dict[int, set[str]] = {}
        self.phase = None  # the phase line of the trial answered last ("Practice 1 of 1", "Trial 3 of 7")

    def trial_index(self, phase: str) -> int:
        kind, k, _ = _PHASE.match(phase).groups()
        return int(k) - 1 + (0 if kind == "Practice" else self.practice)

    def next(self, keyboard=False):
        """On to the next trial's answer form, playing its sound first: its index, or None at the completion code."""
        s = wait_for(
            self.driver,
            "the next trial or the completion code",
            lambda s: s["section"] == "done" or (s["phase"] != self.phase and (s["answer"] or s["play"])),
        )
        if s["section"] == "done":
            assert self.driver.find_element("id", "code").text == self.exp["completion_code"]
            return None
        if s["play"]:
            t0 = time.monotonic()
            press(self.driver, "play", keyboard)
            s = wait_for(self.driver, "the answer form after the sound", lambda s: s["answer"])
            assert time.monotonic() - t0 > 0.2, "the answers came before the word could have played"
        assert s["focused"] == "filter", "the filter has the keyboard focus when the answers appear"
        i = self.trial_index(s["phase"])
        if self.exp["kind"] == "audio":  # the word played was the list's
            played = self.driver.execute_script(
                "return performance.getEntriesByType('resource')"
                ".filter((e) => e.initiatorType === 'audio').map((e) => new URL(e.name).pathname)"
            )
            assert played[-1] == f"/media/{self.trials[i]['stimulus']}", played
        return i

    def answer(self, how="click", wrong=False, then_wait=True):
        """Answer the trial on screen: ``how`` is click, type (the name, Enter) or tab (the name, Tab, Enter)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        s = snapshot(self.driver)
        i = self.trial_index(s["phase"])
        trial = self.trials[i]
        if self.exp["kind"] == "image":
            assert s["picture"] == f"media/{trial['stimulus']}", "the page showed another picture than the list's"
        right = self.exp["stimuli"][trial["stimulus"]]["answer"]
        choice = next(c for c in self.exp["task"]["choices"] if c != right) if wrong else right
        if how == "type":
            keys(self.driver, choice, Keys.ENTER)
        elif how == "tab":
            keys(self.driver, choice, Keys.TAB)
            wait_for(self.driver, f"the focus on {choice!r}", lambda s: s["focused"] == choice, timeout=5)
            keys(self.driver, Keys.ENTER)
        else:
            self.driver.find_element(By.CSS_SELECTOR, f'#choices button[data-choice="{choice}"]').click()
        self.given.setdefault(i, set()).add(choice)
        self.phase = s["phase"]
        if then_wait and trial["phase"] == "practice":
            feedback = wait_for(self.driver, "the practice feedback", lambda s: s["feedback"] != "")["feedback"]
            assert feedback == (f"Not quite: it was “{right}”." if wrong else "Right!")
        return i

    def finish(self, plan=None, keyboard=False):
        """Answer every trial left (``plan``: trial -> (how, wrong); otherwise click the right answer)."""
        plan = plan or {}
        while (i := self.next(keyboard)) is not None:
            how, wrong = plan.get(i, ("type" if keyboard else "click", False))
            self.answer(how, wrong)

    def reloaded(self):
        """After a reload the trial on screen may come back: do not wait for another one."""
        self.phase = None


def check_database(db_url, exp, external_id, given):
    """Exactly one response per trial of the participant's list, each one of those given, scored right."""
    from metamers.experiments import Store

    store = Store(db_url, lists=len(exp["lists"]))
    try:
        p = store.by_external(external_id)
        rows = [r for r in store.all_responses() if r["participant_id"] == p["id"]]
        hp = [h for h in store.all_headphone() if h["participant_id"] == p["id"]]
    finally:
        store.engine.dispose()
    trials = exp["lists"][p["list_index"]]
    assert sorted(r["trial"] for r in rows) == list(range(len(trials))), "one response per trial, none missing"
    assert sorted(given) == list(range(len(trials)))
    for r in rows:
        t = trials[r["trial"]]
        answer = exp["stimuli"][t["stimulus"]]["answer"]
        assert (r["stimulus"], r["phase"], r["answer"]) == (t["stimulus"], t["phase"], answer)
        assert r["response"] in given[r["trial"]]
        assert bool(r["correct"]) == (r["response"] == answer)
        assert 0 <= r["rt_ms"] < 120_000
    assert p["consented"] is not None and p["finished"] is not None
    return p, rows, hp


# ---- tests ----------------------------------------------------------------------------------------------------
def _small(make_experiment, run):
    from metamers.experiments import load_experiment

    return load_experiment(make_experiment(run, participants=2, practice=1, catch=1))


def test_image_session_through_the_page(image_run, make_experiment, browser, tmp_path):
    exp = _small(make_experiment, image_run)
    db = f"sqlite:///{tmp_path / 'responses.sqlite'}"
    viewport(browser, *DESKTOP)
    with serving(exp["directory"], db) as base:
        open_page(browser, base, "p01")
        begin(browser)
        person = Participant(browser, exp)
        # practice wrong (its feedback names the answer), then by typing + Enter, by Tab + Enter, one wrong, clicks
        person.finish({0: ("click", True), 1: ("type", False), 2: ("tab", False), 3: ("click", True)})
        p, rows, _ = check_database(db, exp, "lab:p01", person.given)
    assert p["list_index"] == 0 and p["source"] == "lab"
    assert [bool(r["correct"]) for r in rows][:4] == [False, True, True, False]
    assert all(r["correct"] for r in rows[4:])


def test_audio_session_on_a_phone(audio_run, make_experiment, browser, tmp_path):
    exp = _small(make_experiment, audio_run)
    db = f"sqlite:///{tmp_path / 'responses.sqlite'}"
    viewport(browser, *PHONE)
    with serving(exp["directory"], db) as base:
        open_page(browser, base, "p01")
        pass_headphone_check(browser, exp)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE[0], f"the page is {width} px wide on a {PHONE[0]} px phone"
        begin(browser)
        person = Participant(browser, exp)
        person.finish({1: ("type", False), 2: ("click", True)})
        p, rows, hp = check_database(db, exp, "lab:p01", person.given)
    assert p["headphone_passed"] and p["headphone_correct"] == len(exp["headphone_check"]["trials"])
    assert [h["trial"] for h in hp] == list(range(len(exp["headphone_check"]["trials"])))
    assert all(h["correct"] for h in hp)
    assert [bool(r["correct"]) for r in rows].count(False) == 1


def test_reloads_mid_session_keep_every_trial_once(image_run, make_experiment, browser, tmp_path):
    """Keyboard only: a reload on an answer screen, a reload with an answer in flight, and the study link opened
    anew; the participant ends with every trial answered exactly once."""
    exp = _small(make_experiment, image_run)
    assert len(exp["lists"][0]) >= 6, "the reloads below need six trials or more"
    db = f"sqlite:///{tmp_path / 'responses.sqlite'}"
    viewport(browser, *DESKTOP)
    with serving(exp["directory"], db) as base:
        open_page(browser, base, "p02", keyboard=True)
        begin(browser, keyboard=True)
        person = Participant(browser, exp)
        for _ in range(2):
            person.next(keyboard=True)
            person.answer("type")
        assert person.next(keyboard=True) == 2
        browser.refresh()  # on trial 2's answer screen, not answered
        person.reloaded()
        begin(browser, keyboard=True, resumed=True)
        assert person.next(keyboard=True) == 2
        person.answer("type")
        assert person.next(keyboard=True) == 3
        person.answer("type", then_wait=False)
        browser.refresh()  # the answer to trial 3 may or may not have reached the server
        person.reloaded()
        begin(browser, keyboard=True, resumed=True)
        assert person.next(keyboard=True) in (3, 4)
        browser.get(f"{base}/?participant=p02")  # the study link again, in the same browser
        person.reloaded()
        begin(browser, keyboard=True, resumed=True)
        person.finish(keyboard=True)
        _, rows, _ = check_database(db, exp, "lab:p02", person.given)
        # opening the link once more shows the completion code again, and stores nothing
        browser.get(f"{base}/?participant=p02")
        wait_for(browser, "the completion code", lambda s: s["section"] == "done")
        assert browser.find_element("id", "code").text == exp["completion_code"]
        _, again, _ = check_database(db, exp, "lab:p02", person.given)
    assert [r["id"] for r in again] == [r["id"] for r in rows]
    assert all(r["correct"] for r in rows)
