// The participant page of a metamers recognition experiment.  Talks to the server's /api routes; knows nothing of
// conditions or answers (the server never sends them).  A reload resumes where the participant stopped.
"use strict";

const KEY = "metamers-session:" + location.pathname;
const ID_PARAMS = ["PROLIFIC_PID", "workerId", "participant"];
let state = null;
let busy = false; // an answer is on its way to the server
let loading = false; // the next trial is being fetched or presented

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function show(id) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== id;
  const focus = $(id).querySelector("button.primary:not([hidden])");
  if (focus) focus.focus();
}

async function api(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(data.error || "the server answered " + r.status);
    e.status = r.status;
    throw e;
  }
  return data;
}

function fail(e) {
  busy = false;
  loading = false;
  const message = (e && e.message) || String(e);
  $("error-text").textContent = message.replace(/\.$/, "") + ". Your answers so far are saved.";
  show("error");
}

async function boot() {
  const params = Object.fromEntries(new URLSearchParams(location.search));
  const saved = localStorage.getItem(KEY);
  const named = ID_PARAMS.some((k) => params[k]);
  try {
    try {
      state = saved && !named ? await api("api/start", { session: saved })
                              : await api("api/start", { params, user_agent: navigator.userAgent });
    } catch (e) {
      if (e.status !== 401 || !saved) throw e;
      localStorage.removeItem(KEY);
      state = await api("api/start", { params, user_agent: navigator.userAgent });
    }
    localStorage.setItem(KEY, state.session);
    renderChoices();
    route();
  } catch (e) {
    fail(e);
  }
}

function route() {
  if (state.headphones === "failed") return show("excluded");
  if (state.completion_code) return finish(state);
  if (!state.consented) return show("consent");
  if (state.headphones === "todo") {
    return state.headphone_check.answered === 0 ? show("calibration") : headphoneTrial();
  }
  instructions();
}

// The instructions, or on a reload mid-session a "welcome back": either way the next trial starts on a click, so
// that a picture never flashes before the participant is looking.
function instructions() {
  const resumed = state.answered > 0;
  $("instructions-title").textContent = resumed ? "Welcome back" : "How it works";
  $("instructions-text").textContent =
    state.kind === "image"
      ? "A picture will flash briefly after a cross. Then choose what it showed from the list: click it, or type " +
        "its first letters and press Enter."
      : "Play each sound once, then choose the word you heard: type its first letters and press Enter, or click it.";
  $("instructions-practice").textContent = resumed
    ? `You have answered ${state.answered} of ${state.trials} trials. Continue when you are ready.`
    : state.practice > 0
      ? `The first ${state.practice === 1 ? "trial is" : state.practice + " trials are"} practice: you will be ` +
        "told whether you were right."
      : "";
  $("instructions-go").textContent = resumed ? "Continue" : "Begin";
  show("instructions");
}

// ---- headphone check (Woods et al. 2017) ----
let calibration = null;

function headphoneTrial() {
  const hc = state.headphone_check;
  $("hp-count").textContent = `(${hc.answered + 1} of ${hc.trials.length})`;
  $("hp-choices").hidden = true;
  $("hp-keys").hidden = true;
  $("hp-wait").hidden = true;
  $("hp-play").hidden = false;
  show("headphones");
}

function playHeadphones() {
  const hc = state.headphone_check;
  if (calibration) calibration.pause();
  const a = new Audio(hc.trials[hc.answered]);
  $("hp-play").hidden = true;
  $("hp-wait").hidden = false;
  a.addEventListener("ended", () => {
    $("hp-wait").hidden = true;
    $("hp-choices").hidden = false;
    $("hp-keys").hidden = false;
    $("hp-choices").querySelector("button").focus();
  });
  a.addEventListener("error", () => fail(new Error("the sound could not be played")));
  a.play().catch(fail);
}

async function answerHeadphones(answer) {
  if (busy || $("headphones").hidden || $("hp-choices").hidden) return;
  busy = true;
  try {
    const hc = state.headphone_check;
    const r = await api("api/headphones", { session: state.session, trial: hc.answered, response: answer });
    hc.answered += 1;
    busy = false;
    if (!r.done) return headphoneTrial();
    state.headphones = r.passed ? "passed" : "failed";
    route();
  } catch (e) {
    fail(e);
  }
}

// ---- trials ----
function renderChoices() {
  const box = $("choices");
  box.replaceChildren();
  for (const c of state.choices) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = c;
    b.dataset.choice = c;
    b.addEventListener("click", () => respond(c));
    box.appendChild(b);
  }
}

const typed = () => $("filter").value.trim().toLowerCase();

// A choice matches when it, or one of its words ("cup" in "coffee cup"), starts with what was typed.
function matches(choice, q) {
  const c = choice.toLowerCase();
  return c.startsWith(q) || c.split(/[\s-]+/).some((w) => w.startsWith(q));
}

function visibleChoices() {
  return [...$("choices").children].filter((b) => !b.hidden);
}

function filterChoices() {
  const q = typed();
  for (const b of $("choices").children) b.hidden = q !== "" && !matches(b.dataset.choice, q);
  const v = visibleChoices();
  for (const b of $("choices").children) b.classList.toggle("only", q !== "" && v.length === 1 && b === v[0]);
  $("filter-hint").textContent =
    q === "" ? "" : v.length === 0 ? `Nothing matches “${q}”.` : v.length === 1 ? "Press Enter to choose it." : "";
}

// Enter in the filter: the choice typed in full, or the only one left.  Never a guess among several.
function submitTyped() {
  const q = typed();
  const v = visibleChoices();
  const exact = v.find((b) => b.dataset.choice.toLowerCase() === q);
  const pick = exact || (q !== "" && v.length === 1 ? v[0] : null);
  if (pick) return respond(pick.dataset.choice);
  $("filter-hint").textContent =
    q === "" ? "Type the first letters of your answer, or click it."
      : v.length === 0 ? `Nothing matches “${q}”.`
        : "Several answers match: type more, or click one.";
}

let current = null;
let shownAt = 0;

async function nextTrial() {
  if (loading || busy) return;
  loading = true;
  try {
    const t = await api("api/next", { session: state.session });
    if (t.done) {
      loading = false;
      return t.excluded ? show("excluded") : finish(t);
    }
    current = t;
    $("progress").setAttribute("aria-valuemax", String(t.of));
    $("progress").setAttribute("aria-valuenow", String(t.trial));
    $("progress-bar").style.width = `${(100 * t.trial) / t.of}%`;
    $("phase").textContent =
      t.phase === "practice"
        ? `Practice ${t.trial + 1} of ${state.practice}`
        : `Trial ${t.trial + 1 - state.practice} of ${t.of - state.practice}`;
    $("feedback").textContent = "";
    $("feedback").className = "";
    $("answer").hidden = true;
    $("stage").hidden = false;
    $("filter").value = "";
    filterChoices();
    show("trial");
    if (state.kind === "image") await presentImage(t.media);
    else presentSound(t.media);
  } catch (e) {
    fail(e);
  }
}

// Load and decode an image into an <img> before it is shown, so that it appears whole on its first frame.
async function ready(img, src) {
  if (img.getAttribute("src") !== src) img.src = src;
  if (!img.complete) {
    await new Promise((ok, no) => {
      img.onload = ok;
      img.onerror = () => no(new Error("a picture could not be loaded"));
    });
  }
  if (!img.naturalWidth) throw new Error("a picture could not be loaded");
  await img.decode().catch(() => {}); // decoded ahead where the browser can; shown all the same where not
}

async function presentImage(src) {
  const pic = $("picture");
  const mask = $("mask");
  const tm = state.timing;
  pic.hidden = true;
  mask.hidden = true;
  await Promise.all([ready(pic, src), state.mask ? ready(mask, state.mask) : null]);
  $("fixation").hidden = false;
  await sleep(tm.fixation_ms || 300);
  $("fixation").hidden = true;
  pic.hidden = false;
  await sleep(tm.presentation_ms || 200);
  pic.hidden = true;
  if (state.mask) {
    mask.hidden = false;
    await sleep(tm.mask_ms || 200);
    mask.hidden = true;
  }
  askAnswer();
}

function presentSound(src) {
  const play = $("play");
  play.hidden = false;
  play.disabled = false;
  $("listening").hidden = true;
  play.focus();
  loading = false;
  play.onclick = () => {
    if (play.disabled) return;
    play.disabled = true;
    loading = true;
    const a = new Audio(src);
    a.addEventListener("ended", () => {
      play.hidden = true;
      $("listening").hidden = true;
      askAnswer();
    });
    a.addEventListener("error", () => fail(new Error("the sound could not be played")));
    a.play().then(() => {
      play.hidden = true;
      $("listening").hidden = false;
    }, fail);
  };
}

function askAnswer() {
  loading = false;
  $("stage").hidden = true;
  $("prompt").textContent = state.prompt;
  $("answer").hidden = false;
  $("filter").focus();
  shownAt = performance.now();
}

async function respond(choice) {
  if (busy || !current || $("answer").hidden) return;
  busy = true;
  const rt = performance.now() - shownAt;
  try {
    const r = await api("api/response", {
      session: state.session,
      trial: current.trial,
      response: choice,
      rt_ms: Math.round(rt * 10) / 10,
      client_time: Date.now(),
    });
    $("answer").hidden = true;
    if (r.feedback) {
      $("feedback").textContent = r.feedback.correct ? "Right!" : `Not quite: it was “${r.feedback.answer}”.`;
      $("feedback").className = r.feedback.correct ? "right" : "wrong";
      await sleep(1200);
    }
    busy = false;
    nextTrial();
  } catch (e) {
    fail(e);
  }
}

function finish(t) {
  localStorage.removeItem(KEY);
  $("done-text").textContent = "You have finished. Your completion code:";
  $("code").textContent = t.completion_code;
  if (t.completion_url) {
    $("done-link").href = t.completion_url;
    $("done-link").hidden = false;
  }
  show("done");
}

document.addEventListener("DOMContentLoaded", () => {
  $("consent-yes").addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    try {
      await api("api/consent", { session: state.session });
      busy = false;
      state.consented = true;
      route();
    } catch (e) {
      fail(e);
    }
  });
  $("calibration-play").addEventListener("click", () => {
    calibration = calibration || new Audio(state.headphone_check.calibration);
    calibration.currentTime = 0;
    // pausing it ("The volume is set") before it has started rejects play() with an AbortError: not a failure
    calibration.play().then(
      () => {
        $("calibration-done").disabled = false; // the check starts once the participant has heard the noise
        $("calibration-done").focus();
      },
      (e) => {
        if (e.name !== "AbortError") fail(e);
      },
    );
  });
  $("calibration-done").addEventListener("click", () => {
    if (calibration) calibration.pause();
    headphoneTrial();
  });
  $("hp-play").addEventListener("click", playHeadphones);
  for (const b of $("hp-choices").querySelectorAll("button")) {
    b.addEventListener("click", () => answerHeadphones(Number(b.dataset.answer)));
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.repeat || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (!$("headphones").hidden && !$("hp-choices").hidden && ["1", "2", "3"].includes(ev.key)) {
      ev.preventDefault();
      answerHeadphones(Number(ev.key));
    }
  });
  $("instructions-go").addEventListener("click", () => nextTrial());
  $("filter").addEventListener("input", filterChoices);
  $("filter").addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") {
      const v = visibleChoices();
      if (v.length) {
        ev.preventDefault();
        v[0].focus();
      }
    }
  });
  $("answer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitTyped();
  });
  $("retry").addEventListener("click", boot);
  boot();
});
