// The dev phone: a handset on the simulated phone network, in the browser.
//
// Every action goes to /dev/phone/api/... which drives the simulator's handset API; the simulator
// then posts the real signed webhooks to the app. What happens comes back as one event feed
// (GET events?cursor=N), polled a few times a second. The feed is general: each event has a
// channel ("call", "sms", "network"), a call or message sid and the handset concerned; add a
// listener with `feed.on(fn)`.
//
// Calls the app places (alerts to contacts) ring as "incoming call" cards: each is answered (as a
// person or by the voicemail), left ringing or declined on its own. The keypad and the transcript
// follow one call at a time, chosen in "The keypad and transcript follow". E-mails the app sends
// in development are polled the same way (GET emails?cursor=N) into the E-mails panel.
//
// Ringing cards come first (a new one joins the end of the ringing ones, so no card moves under
// the pointer), a bar at the top of the window says when one rings out of view, and ended cards
// fold into "Ended calls" (the one on the keypad once the keypad moves on).
//
// Texts: the Texts pane sends a handset's text (pictures read as base64) with POST texts, and
// reads every handset's conversation (GET texts) again whenever the feed brings an sms event.
//
// Clock times are shown in a named time zone, never the browser's: an alert call's in its
// contact's district's zone (the one the alert speaks its times in), everything else in the zone
// GET state gives (the first district's in the directory, or UTC), and the page says which.
"use strict";

(() => {
  const root = document.getElementById("devphone");
  if (!root) return;
  const API = root.dataset.api;
  const POLL_MS = 600;
  const MAIL_POLL_MS = 2000;
  const MAX_ACTIVITY = 400;
  const MAX_EVENTS_KEPT = 5000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    caller: $("caller"),
    dial: $("dial"),
    hangup: $("hangup"),
    status: $("status"),
    error: $("error"),
    keypad: $("keypad"),
    speechForm: $("speech-form"),
    speech: $("speech"),
    recordingForm: $("recording-form"),
    recording: $("recording"),
    mic: $("mic"),
    transcript: $("transcript"),
    transcriptCall: $("transcript-call"),
    callSwitch: $("call-switch"),
    activeCall: $("active-call"),
    incoming: $("incoming"),
    incomingHeading: $("incoming-heading"),
    noIncoming: $("no-incoming"),
    incomingNews: $("incoming-news"),
    callsBody: document.querySelector("#calls tbody"),
    noCalls: $("no-calls"),
    activity: $("activity"),
    emails: $("emails"),
    noEmails: $("no-emails"),
    emailsHint: $("emails-hint"),
    emailCount: $("email-count"),
    emailsNews: $("emails-news"),
    mailView: $("mail-view"),
    mailSubject: $("mail-subject"),
    mailFrom: $("mail-from"),
    mailTo: $("mail-to"),
    mailDate: $("mail-date"),
    mailText: $("mail-text"),
    mailHtmlBox: $("mail-html-box"),
    mailHtml: $("mail-html"),
    mailClose: $("mail-close"),
    timeZoneNote: $("time-zone-note"),
    ringBar: $("ring-bar"),
    ringBarText: $("ring-bar-text"),
    ringBarShow: $("ring-bar-show"),
    ended: $("ended"),
    endedCalls: $("ended-calls"),
    endedCount: $("ended-count"),
    patient: $("patient"),
    patientTimes: $("patient-times"),
    waitNote: $("wait-note"),
    textForm: $("text-form"),
    texter: $("texter"),
    textBody: $("text-body"),
    textPictures: $("text-pictures"),
    textPicturesChosen: $("text-pictures-chosen"),
    textSend: $("text-send"),
    conversationPickBox: $("conversation-pick-box"),
    conversationPick: $("conversation-pick"),
    threadTitle: $("thread-title"),
    optoutNote: $("optout-note"),
    textReachable: $("text-reachable"),
    thread: $("thread"),
    textsNews: $("texts-news"),
    textError: $("text-error"),
  };

  // --- clock times, in a named time zone -------------------------------------------------------

  // The zone GET state names (the first district's, or UTC); until then the browser's.
  let pageZone = { name: undefined, source: "" };
  const formatters = new Map();

  function formatter(zone, long) {
    const key = `${zone || ""}|${long ? "long" : "short"}`;
    let format = formatters.get(key);
    if (!format) {
      const options = long
        ? { dateStyle: "full", timeStyle: "long", timeZone: zone }
        : { hour: "numeric", minute: "2-digit", second: "2-digit", timeZoneName: "short", timeZone: zone };
      try {
        format = new Intl.DateTimeFormat("en-US", options);
      } catch (_) {
        format = new Intl.DateTimeFormat("en-US", { ...options, timeZone: undefined });
      }
      formatters.set(key, format);
    }
    return format;
  }

  // "2:15:03 PM CST" in ``zone`` (the page's zone when none is given).
  function formatTime(iso, zone) {
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? iso : formatter(zone || pageZone.name).format(when);
  }

  function formatDate(iso, zone) {
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? iso : formatter(zone || pageZone.name, true).format(when);
  }

  function zoneAbbreviation(zone) {
    const part = formatter(zone).formatToParts(new Date()).find((p) => p.type === "timeZoneName");
    return part ? part.value : zone;
  }

  function showTimeZone(zone) {
    if (!zone || !zone.name) return;
    pageZone = zone;
    ui.timeZoneNote.textContent =
      `Clock times on this page are in ${zone.name} (${zoneAbbreviation(zone.name)}): ${zone.source}. ` +
      "A call from the hotline to a contact shows its times in that contact's district's zone, " +
      "the one its alert speaks.";
  }

  // The zone a call's times are shown in: a contact's district's for a call the hotline placed.
  function callZone(call) {
    if (call && call.direction !== "inbound") {
      const info = callees.get(call.sid);
      if (info && typeof info === "object") {
        const known = info.contacts.filter((c) => c.time_zone);
        const active = known.filter((c) => c.active);
        const first = (active.length ? active : known)[0];
        if (first) return first.time_zone;
      }
    }
    return pageZone.name;
  }

  function formatSeconds(seconds) {
    const s = Math.round(seconds);
    if (s < 120) return `${s} s`;
    const minutes = Math.floor(s / 60);
    const rest = s % 60;
    return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  }

  // --- the API -----------------------------------------------------------------------------------

  class ApiError extends Error {}

  async function api(method, path, body) {
    const init = {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json", "X-Dev-Phone": "1" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (_) {
      throw new ApiError("the hotline did not answer (is `make run` still running?)");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok || !data || data.ok === false) {
      throw new ApiError((data && data.error) || `HTTP ${response.status}`);
    }
    return data;
  }

  // Handset actions run one after the other, in the order they were made: keys pressed quickly
  // reach the hotline in order.
  let queue = Promise.resolve();
  // ``box``: where a refusal is shown (the handset's error box unless the action is elsewhere).
  function act(label, path, body, box) {
    const run = async () => {
      try {
        const data = await api("POST", path, body);
        clearError(box);
        if (data.call) updateCall(data.call);
        return data;
      } catch (error) {
        showError(`${label}: ${error.message}`, box);
        return null;
      } finally {
        feed.pollSoon();
      }
    };
    const result = queue.then(run);
    queue = result.catch(() => null);
    return result;
  }

  // --- the event feed ----------------------------------------------------------------------------

  const feed = {
    cursor: 0,
    listeners: [],
    timer: null,
    busy: false,
    again: false,
    failures: 0,
    on(listener) {
      this.listeners.push(listener);
    },
    emit(events, calls) {
      for (const listener of this.listeners) listener(events, calls);
    },
    pollSoon() {
      this.schedule(0);
    },
    schedule(ms) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.poll(), ms);
    },
    async poll() {
      if (this.busy) {
        this.again = true;
        return;
      }
      this.busy = true;
      let delay = POLL_MS;
      try {
        const data = await api("GET", `/events?cursor=${this.cursor}`);
        this.cursor = data.cursor;
        if (data.patience && data.patience.multiplier !== patience.multiplier) showPatience(data.patience);
        this.emit(data.events, data.calls);
        if (this.failures) clearError();
        this.failures = 0;
        if (data.more) delay = 0;
      } catch (error) {
        this.failures += 1;
        if (this.failures === 3) showError(`Lost the event feed: ${error.message}`);
        delay = Math.min(5000, POLL_MS * 2 ** this.failures);
      } finally {
        this.busy = false;
      }
      if (this.again) {
        this.again = false;
        delay = 0;
      }
      this.schedule(delay);
    },
  };

  // --- calls -------------------------------------------------------------------------------------

  const calls = new Map(); // sid -> call (as the API gives it)
  const eventsByCall = new Map(); // sid -> [event], oldest first
  let keptEvents = 0;
  let current = null; // sid of the call the keypad and the transcript follow
  let myCall = null; // sid of the last call this tab dialed to the hotline
  const mine = new Set(); // every call this tab dialed
  let lastShownSeq = 0;
  let dialing = false;
  let recorder = null; // the microphone's MediaRecorder while recording
  let micChunks = [];

  function remember(event) {
    if (!event.call_sid) return;
    let list = eventsByCall.get(event.call_sid);
    if (!list) eventsByCall.set(event.call_sid, (list = []));
    const last = list[list.length - 1];
    if (last && last.seq >= event.seq) {
      // Already there (a call's log fetched before the feed brought the event): keep order.
      if (list.some((e) => e.seq === event.seq)) return;
      list.push(event);
      list.sort((a, b) => a.seq - b.seq);
    } else {
      list.push(event);
    }
    keptEvents += 1;
    if (keptEvents > MAX_EVENTS_KEPT) {
      // Forget the oldest finished calls' events (the call log keeps their rows).
      for (const [sid, events] of eventsByCall) {
        const call = calls.get(sid);
        if (sid === current || (call && call.live)) continue;
        eventsByCall.delete(sid);
        keptEvents -= events.length;
        if (keptEvents <= MAX_EVENTS_KEPT / 2) break;
      }
    }
  }

  function updateCall(call) {
    const known = calls.get(call.sid);
    // A call never comes back to life: an answer that left the server before the call ended
    // (a log fetched while the feed brought the end) must not revive it.
    if (known && !known.live && call.live) call = known;
    calls.set(call.sid, call);
    renderCallRow(call);
    if (cards.has(call.sid)) renderCard(call);
    if (call.sid === current || call.sid === myCall) renderCurrent();
  }

  function setCurrent(sid) {
    if (recorder && sid !== current) stopMic(false);
    const before = current;
    current = sid;
    lastShownSeq = 0;
    ui.transcript.replaceChildren();
    for (const event of eventsByCall.get(sid) || []) showInTranscript(event);
    renderCurrent();
    for (const other of [before, sid]) {
      const call = other && calls.get(other);
      if (call) {
        renderCallRow(call);
        if (cards.has(other)) renderCard(call);
      }
    }
    renderSwitch();
  }

  // The keypad and the transcript move to another call; its whole log is fetched first (a call
  // placed before this page was opened has events the feed never brought).
  async function selectCall(sid) {
    if (!sid) return;
    try {
      const data = await api("GET", `/calls/${encodeURIComponent(sid)}`);
      for (const event of data.events) remember(event);
      updateCall(data.call);
    } catch (error) {
      showError(`Could not open that call: ${error.message}`);
    }
    setCurrent(sid);
  }

  function currentCall() {
    return current ? calls.get(current) : null;
  }

  feed.on((events, infos) => {
    for (const event of events) remember(event);
    for (const info of infos) {
      // A call the app places rings here; one that came and went between two polls shows too.
      if (info.direction !== "inbound" && (info.live || !calls.has(info.sid))) ensureCard(info);
      updateCall(info);
    }
    for (const event of events) {
      logActivity(event);
      if (event.call_sid && event.call_sid === current) showInTranscript(event);
    }
    renderSwitch();
  });

  // --- what the hotline says (the transcript) ----------------------------------------------------

  const TECHNICAL = new Set(["webhook", "redirect", "answer", "amd", "call"]);

  function showInTranscript(event) {
    if (event.seq <= lastShownSeq) return;
    lastShownSeq = event.seq;
    const line = transcriptLine(event);
    if (!line) return;
    line.dataset.seq = String(event.seq);
    line.dataset.kind = event.kind;
    const list = ui.transcript;
    // Follow the newest line only when the reader is at the end already (not reading back).
    const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const last = list.lastElementChild;
    if (last && last.dataset.listening && (event.kind === "say" || event.kind === "play")) {
      // The prompts nested in a <Gather> come after its event: show them before "listening".
      last.before(line);
    } else {
      list.append(line);
    }
    // The list scrolls, never the page: a ringing card at the top stays where it is.
    if (atEnd) list.scrollTop = list.scrollHeight;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function line(who, className, text, extra) {
    const item = el("li", `line ${className}`);
    item.append(el("span", "who", who));
    if (extra) item.append(extra);
    const said = el("span", "text", text);
    item.append(said);
    return item;
  }

  function langTag(language, voice) {
    const tag = el("span", "lang", language || "no language");
    if (voice) tag.title = `voice ${voice}`;
    return tag;
  }

  function transcriptLine(event) {
    const detail = event.detail || {};
    const unheard = detail.heard === "no";
    switch (event.kind) {
      case "say": {
        const item = line("Hotline", "hotline", event.text, langTag(event.language, event.voice));
        if (event.language) item.querySelector(".text").lang = event.language;
        if (detail.loop && detail.loop !== "1") {
          item.append(el("span", "note", ` (said ${detail.loop === "0" ? "again and again" : `${detail.loop} times`})`));
        }
        return item;
      }
      case "play":
        return line("Hotline", "hotline", event.text.startsWith("DTMF") ? `plays key tones (${event.text.slice(5)})` : `plays a sound: ${event.text}`);
      case "pause":
        return line("", "system", `Silence for ${seconds(event.text)}.`);
      case "gather": {
        const item = line("", "system", gatherText(event.text, detail));
        if (event.text.startsWith("listening")) item.dataset.listening = "true";
        return item;
      }
      case "record":
        return line("", "system", recordText(event.text, detail));
      case "recording":
        return line("You", "you", `recorded (${detail.duration || "?"} s): ${event.text}`);
      case "dtmf":
        return line("You", `you${unheard ? " unheard" : ""}`, `pressed ${event.text}${unheard ? " (the hotline was not listening for keys)" : ""}`);
      case "speech":
        return line("You", `you${unheard ? " unheard" : ""}`, `said “${event.text}”${unheard ? " (the hotline was not listening)" : ""}`);
      case "hangup":
        return line("", "system", HANGUPS[event.text] || `The call was hung up (${event.text}).`);
      case "answer":
        return line("", "system", answerText(event.text));
      case "amd":
        return line("", "system amd", `Machine detection: the hotline thinks ${verdictWords(event.text)}.`);
      case "call":
        return callEventLine(event.text);
      case "update":
        return line("", "system", updateText(event.text));
      case "reject":
        return line("", "system", `The hotline refused the call (${event.text === "busy" ? "a busy tone" : "it does not answer"}).`);
      case "dial":
        return line("", "system", dialText(event.text));
      case "status":
        return statusLine(event.text);
      case "error":
        return errorLine(event.text);
      case "warning":
        return line("Note", "warning", WARNINGS[event.text] || event.text);
      default:
        return TECHNICAL.has(event.kind) ? null : line("", "system", event.text);
    }
  }

  // "2 s" from the network's "2 s"; "2" alone too.
  function seconds(text) {
    const n = Number.parseFloat(text);
    return Number.isNaN(n) ? text : `${n} second${n === 1 ? "" : "s"}`;
  }

  const HANGUPS = {
    declined: "You declined the call.",
    "the handset hung up": "You hung up.",
    "<Hangup>": "The hotline hung up.",
    "end of the document": "The hotline hung up (it had nothing more to say).",
    "time limit reached": "The call reached its time limit and was cut off.",
  };

  const WARNINGS = {
    "prompts cut off (barge-in)": "Your key cut the prompt short, as it does on a real phone.",
    "answer dropped: the call was redirected or ended":
      "The hotline's answer came too late: the call had moved on or ended.",
  };

  function updateText(text) {
    if (text === "status=completed") return "The hotline ended the call.";
    if (text === "status=canceled") return "The hotline called it off.";
    if (text.startsWith("call redirected")) return "The hotline moved the call on to its next step.";
    return `The hotline changed the call (${text}).`;
  }

  function dialText(text) {
    const [target, what] = text.split(/: (.*)/s);
    if (what === "waiting alone") return `The hotline puts you in a conference (${target}); nobody else joins here.`;
    return `The hotline tries to connect you to ${target}: nobody answers (connecting calls is not simulated).`;
  }

  function recordText(text, detail) {
    if (text === "nothing recorded") return "Nothing was recorded: the call moves on.";
    const beep = text === "beep" ? "Beep. " : "";
    const waits = detail.timeout && detail.timeout !== "0" ? ` (${waitWords(detail.timeout, detail.patience)})` : "";
    return `${beep}The hotline is recording: type your message and send it, or press ${detail.finishOnKey || "#"} to finish${waits}.`;
  }

  function waitWords(timeout, patience) {
    const given = Number(timeout) * (patience ? Number(patience) : 1);
    const patient = patience ? `, ${patience} times its ${formatSeconds(Number(timeout))}: patient caller` : "";
    return `it waits ${formatSeconds(given)} for you${patient}`;
  }

  function answerText(text) {
    const by = text.replace(/^answered by /, "");
    if (by === "human") return "You answered.";
    return `The voicemail answered (as ${by}).`;
  }

  const VERDICTS = {
    human: "a person answered",
    machine_start: "a machine answered (at the start of its greeting)",
    machine_end_beep: "a machine answered (its greeting ended with a beep)",
    machine_end_silence: "a machine answered (its greeting ended in silence)",
    machine_end_other: "a machine answered (after its greeting)",
    fax: "a fax machine answered",
    unknown: "it could not tell who answered",
  };

  function verdictWords(verdict) {
    return VERDICTS[verdict] || verdict;
  }

  function callEventLine(text) {
    if (text === "outbound call placed") return line("", "system", "The hotline is calling this phone.");
    if (text === "left ringing") return line("", "system", "You let it ring.");
    if (text === "nobody answered") return line("", "system", "Nobody answered.");
    return null;
  }

  function gatherText(text, detail) {
    if (text.startsWith("listening")) {
      const what = (detail.input || "").split(" ").filter(Boolean).map((i) => (i === "dtmf" ? "keypad" : i));
      const waits = detail.timeout ? ` (${waitWords(detail.timeout, detail.patience)})` : "";
      return `The hotline is listening for ${what.join(" or ") || "input"}${waits}.`;
    }
    if (text === "no input: next verb") return "No answer: the call moves on.";
    if (text === "no input: posting the action anyway") return "No answer: the hotline decides what comes next.";
    return text;
  }

  const FINAL = new Set(["completed", "busy", "failed", "no-answer", "canceled"]);

  function statusLine(status) {
    if (status === "in-progress") return line("", "system", "Connected.");
    if (status === "ringing") return line("", "system", "Ringing…");
    if (FINAL.has(status)) return line("", "system ended", `Call ended (${status}).`);
    return null;
  }

  function errorLine(text) {
    // What a Twilio caller hears follows as its own line; this says why.
    const item = line("Error", "error", `Application error ${text} (the hotline's answer could not be used)`);
    const match = /^(\d+):/.exec(text);
    if (match) item.dataset.code = match[1];
    return item;
  }

  // --- the status line, the controls ------------------------------------------------------------

  function describe(call) {
    if (!call) return "Not in a call.";
    if (!call.live) {
      const length = call.duration != null ? `, ${formatDuration(call.duration)}` : "";
      return `Call ended (${call.status}${length}).`;
    }
    switch (call.waiting_for) {
      case "ringing":
        return "Ringing…";
      case "machine-detection":
        return "Connected: machine detection is listening…";
      case "webhook":
        return "Connected: the hotline is answering…";
      case "gather": {
        const inputs = call.gather_inputs.map((i) => (i === "dtmf" ? "keypad" : i));
        return `Connected: the hotline is listening for ${inputs.join(" or ")}.`;
      }
      case "record":
        return "Connected: recording. Type your message and send it, or press #.";
      case "pause":
        return "Connected: pause…";
      case "dial":
        return "Connected: transferring…";
      default:
        return call.status === "in-progress" ? "Connected." : `Call ${call.status}…`;
    }
  }

  let lastStatusText = "";
  let lastCallText = "";
  function renderCurrent() {
    const call = currentCall();
    const live = Boolean(call && call.live);
    // A call the hotline placed takes keys once it is answered; while it rings, only the card's
    // buttons act on it.
    const talking = live && (call.direction === "inbound" || Boolean(call.answered_at));
    const own = myCall ? calls.get(myCall) : null;
    const ownLive = Boolean(own && own.live);
    const text = describe(call);
    if (text !== lastStatusText) {
      ui.status.textContent = text;
      lastStatusText = text;
    }
    const callText = call
      ? `On ${callTitle(call)}, ${call.direction === "inbound" ? "dialed" : "placed"} at ${formatTime(call.created_at, callZone(call))}${call.live ? "" : " (ended)"}.`
      : "No call yet.";
    if (callText !== lastCallText) {
      ui.transcriptCall.textContent = callText;
      lastCallText = callText;
    }
    ui.status.dataset.state = call ? (call.live ? call.waiting_for || call.status : "ended") : "idle";
    ui.hangup.disabled = !live;
    ui.dial.disabled = ownLive || dialing;
    ui.caller.readOnly = ownLive;
    renderWaitNote(call, talking);
    ui.keypad.disabled = !talking;
    ui.speechForm.querySelector("fieldset").disabled = !talking;
    ui.recordingForm.querySelector("fieldset").disabled = !talking;
    if (!talking && recorder) stopMic(false);
  }

  // How long the hotline waits for the caller now (a <Gather> or a <Record>), with the patient
  // caller's stretch: not a live region, so key presses that re-arm it are not read out.
  function renderWaitNote(call, talking) {
    const waits = talking && call.listen_until && call.listen_seconds != null;
    ui.waitNote.hidden = !waits;
    if (!waits) return;
    const patient = patience.multiplier > 1 ? `, patient caller: ${patience.multiplier} times as long` : "";
    const text = `If you do nothing, the hotline moves on at ${formatTime(call.listen_until, callZone(call))} (it waits ${formatSeconds(call.listen_seconds)}${patient}).`;
    if (ui.waitNote.textContent !== text) ui.waitNote.textContent = text;
  }

  // --- the patient caller ---------------------------------------------------------------------------

  let patience = { patient: false, multiplier: 1, default_multiplier: 5 };

  function showPatience(given) {
    if (!given) return;
    patience = given;
    ui.patient.checked = given.patient;
    const times = given.patient ? given.multiplier : given.default_multiplier;
    ui.patientTimes.textContent = `${times} times`;
  }

  ui.patient.addEventListener("change", async () => {
    const wanted = ui.patient.checked;
    const data = await act("Could not change the patient caller", "/patience", { patient: wanted });
    if (data) showPatience(data.patience);
    else ui.patient.checked = !wanted;
    renderCurrent();
  });

  // --- which call the keypad follows --------------------------------------------------------------

  function callTitle(call) {
    if (call.direction === "inbound") {
      return mine.has(call.sid) ? `your call to the hotline from ${call.from}` : `${call.from}'s call to the hotline`;
    }
    return `the hotline's call to ${calleeLabel(call)}`;
  }

  function switchLabel(call) {
    if (call.direction === "inbound") {
      return mine.has(call.sid) ? "Your call to the hotline" : `${call.from}'s call to the hotline`;
    }
    return `Call to ${calleeNames(call.sid) || call.to}`;
  }

  function switchable() {
    return [...calls.values()].filter(
      (c) =>
        c.sid === current ||
        (c.live && (mine.has(c.sid) || (c.direction !== "inbound" && Boolean(c.answered_at)))),
    );
  }

  let switchKey = "";
  function renderSwitch() {
    const options = switchable();
    const key = `${current}|` + options.map((c) => `${c.sid}:${c.live}:${switchLabel(c)}`).join("|");
    if (key === switchKey) return;
    switchKey = key;
    ui.activeCall.replaceChildren(
      ...options.map((call) => {
        const option = el("option", "", switchLabel(call) + (call.live ? "" : " (ended)"));
        option.value = call.sid;
        option.selected = call.sid === current;
        return option;
      }),
    );
    ui.callSwitch.hidden = options.length < 2;
  }

  ui.activeCall.addEventListener("change", () => selectCall(ui.activeCall.value));

  function showError(message, box = ui.error) {
    box.textContent = message;
    box.hidden = false;
  }

  function clearError(box = ui.error) {
    box.hidden = true;
    box.textContent = "";
  }

  // --- the call log ------------------------------------------------------------------------------

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function callLabel(call) {
    if (call.direction === "inbound") return `${call.from} called the hotline`;
    return `Hotline called ${calleeLabel(call)}`;
  }

  function renderCallRow(call) {
    let row = ui.callsBody.querySelector(`tr[data-sid="${call.sid}"]`);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.sid = call.sid;
      row.dataset.direction = call.direction;
      for (let i = 0; i < 4; i += 1) row.append(document.createElement("td"));
      ui.callsBody.prepend(row);
      ui.noCalls.hidden = true;
    }
    const cells = row.children;
    const time = el("time", "", formatTime(call.created_at, callZone(call)));
    time.dateTime = call.created_at;
    cells[0].replaceChildren(time);
    cells[1].textContent = callLabel(call) + (call.sid === current ? " (on the keypad)" : "");
    cells[1].title = call.sid;
    const waiting = call.live && call.waiting_for && call.waiting_for !== call.status;
    cells[2].textContent = waiting ? `${call.status}, ${call.waiting_for}` : call.status;
    cells[3].textContent = call.duration != null ? formatDuration(call.duration) : "";
    row.classList.toggle("live", call.live);
    row.classList.toggle("current", call.sid === current);
  }

  // --- incoming calls: the calls the hotline places ring here ----------------------------------

  const cards = new Map(); // sid -> the card's elements
  const dismissed = new Set();
  const callees = new Map(); // sid -> {number, contacts} from the directory, or "loading"/"failed"
  const ringsUntil = new Map(); // sid -> when a call left ringing gives up (ISO)

  function calleeNames(sid) {
    const info = callees.get(sid);
    if (!info || typeof info !== "object" || !info.contacts.length) return "";
    const active = info.contacts.filter((c) => c.active);
    return (active.length ? active : info.contacts).map((c) => c.name).join(", ");
  }

  function calleeLabel(call) {
    const names = calleeNames(call.sid);
    return names ? `${names} (${call.to})` : call.to;
  }

  async function loadCallee(sid) {
    if (callees.has(sid)) return;
    callees.set(sid, "loading");
    try {
      callees.set(sid, await api("GET", `/calls/${encodeURIComponent(sid)}/contacts`));
    } catch (_) {
      callees.set(sid, "failed");
    }
    const call = calls.get(sid);
    if (call) {
      updateCall(call);
      // Said once, when the name is known (the card itself is not a live region: its buttons
      // would be read out at every change).
      if (call.live && !call.answered_at) ui.incomingNews.textContent = `Incoming call to ${calleeLabel(call)} from the hotline.`;
    }
    renderSwitch();
  }

  function ensureCard(call) {
    if (cards.has(call.sid) || dismissed.has(call.sid)) return;
    const id = `ring-${call.sid}`;
    const item = el("li", "ring-card");
    item.dataset.sid = call.sid;
    item.setAttribute("aria-labelledby", `${id}-title`);
    const head = el("div", "ring-head");
    const dot = el("span", "ring-dot");
    dot.setAttribute("aria-hidden", "true");
    const title = el("h3", "ring-title");
    title.id = `${id}-title`;
    title.tabIndex = -1;
    head.append(dot, title);
    const who = el("ul", "ring-contacts");
    who.setAttribute("aria-label", "In the directory");
    const state = el("p", "ring-state");
    state.id = `${id}-state`;
    const actions = el("div", "ring-actions");
    actions.setAttribute("role", "group");
    actions.setAttribute("aria-labelledby", `${id}-title`);
    actions.setAttribute("aria-describedby", `${id}-state`);
    const buttons = {};
    for (const [action, text, style] of [
      ["answer", "Answer", "btn-call"],
      ["machine", "Let voicemail answer", "btn-secondary"],
      ["ring", "Let it ring", "btn-secondary"],
      ["decline", "Decline", "btn-end"],
      ["select", "Use the keypad on this call", "btn-secondary"],
      ["hangup", "Hang up", "btn-end"],
      ["dismiss", "Dismiss", "btn-secondary"],
    ]) {
      const button = el("button", `btn ${style}`, text);
      button.type = "button";
      button.dataset.action = action;
      buttons[action] = button;
      actions.append(button);
    }
    item.append(head, who, state, actions);
    cards.set(call.sid, { item, title, who, state, buttons, contactsKey: null, folded: false });
    keepInPlace(() => {
      ui.incoming.append(item);
      sighted.observe(item);
      renderCard(call);
      // Ringing calls first, each group in the order the calls came. Cards are put in that
      // order only when a call starts ringing, never when one is answered: a card does not move
      // away from under the pointer that just answered it.
      const shown = [...ui.incoming.children];
      const ringing = shown.filter((c) => c.dataset.state === "ringing");
      const order = [...ringing, ...shown.filter((c) => !ringing.includes(c))];
      // Only the cards out of place move (a moved node loses the focus).
      order.forEach((card, index) => {
        const there = ui.incoming.children[index];
        if (there !== card) ui.incoming.insertBefore(card, there);
      });
      renderIncomingHints();
    });
    loadCallee(call.sid);
  }

  function removeCard(sid) {
    const card = cards.get(sid);
    if (!card) return;
    sighted.unobserve(card.item);
    inView.delete(card.item);
    keepInPlace(() => {
      card.item.remove();
      renderIncomingHints();
    });
    cards.delete(sid);
    dismissed.add(sid);
    renderRingBar();
  }

  // Cards come and go at the top of the page: someone reading or pressing keys further down
  // (the call's status, the transcript, the keypad) keeps what they look at where it was.
  function keepInPlace(change) {
    const below = ui.incomingHeading.closest("section").getBoundingClientRect().bottom < 0;
    const anchor = below ? document.elementFromPoint(window.innerWidth / 2, window.innerHeight / 2) : null;
    const before = anchor ? anchor.getBoundingClientRect().top : 0;
    change();
    if (anchor && anchor.isConnected) {
      const moved = anchor.getBoundingClientRect().top - before;
      if (Math.abs(moved) > 1) window.scrollBy(0, moved);
    }
  }

  // An ended call folds into "Ended calls" (collapsed), except the one the keypad follows: the
  // person on it sees how it ended until the keypad moves on.
  function foldCard(card) {
    card.folded = true;
    sighted.unobserve(card.item);
    inView.delete(card.item);
    keepInPlace(() => {
      ui.ended.prepend(card.item);
      renderIncomingHints();
    });
  }

  function renderIncomingHints() {
    ui.noIncoming.hidden = ui.incoming.childElementCount > 0;
    const ended = ui.ended.childElementCount;
    ui.endedCount.textContent = String(ended);
    ui.endedCalls.hidden = ended === 0;
  }

  // --- the ring bar: a call ringing out of view is announced at the top of the window --------

  const inView = new Set(); // card items at least partly in the viewport
  const sighted = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) inView.add(entry.target);
        else inView.delete(entry.target);
      }
      renderRingBar();
    },
    // The bar itself covers the top of the window: a card under it is not in view.
    { rootMargin: "-56px 0px 0px 0px" },
  );

  function ringingOutOfView() {
    return [...ui.incoming.children].filter((item) => item.dataset.state === "ringing" && !inView.has(item));
  }

  function renderRingBar() {
    const hidden = ringingOutOfView();
    ui.ringBar.hidden = hidden.length === 0;
    if (!hidden.length) return;
    const call = calls.get(hidden[0].dataset.sid);
    const first = call ? calleeNames(call.sid) || call.to : "a call from the hotline";
    const more = hidden.length > 1 ? ` (and ${hidden.length - 1} more)` : "";
    const text = `Ringing: the hotline calls ${first}${more}.`;
    if (ui.ringBarText.textContent !== text) ui.ringBarText.textContent = text;
  }

  ui.ringBarShow.addEventListener("click", () => {
    const [item] = ringingOutOfView();
    const card = item && cards.get(item.dataset.sid);
    if (!card) return;
    item.scrollIntoView({ block: "center" });
    card.title.focus({ preventScroll: true });
  });

  // What the call's events say: how it was answered, the machine-detection verdict, left ringing.
  function cardFacts(sid) {
    const facts = { answeredBy: null, verdict: null, leftRinging: false, declined: false };
    for (const event of eventsByCall.get(sid) || []) {
      if (event.kind === "answer") facts.answeredBy = event.text.replace(/^answered by /, "");
      else if (event.kind === "amd") facts.verdict = event.text;
      else if (event.kind === "call" && event.text === "left ringing") facts.leftRinging = true;
      else if (event.kind === "hangup" && event.text === "declined") facts.declined = true;
    }
    if (ringsUntil.has(sid)) facts.leftRinging = true;
    return facts;
  }

  const ENDINGS = {
    completed: "completed",
    busy: "busy",
    "no-answer": "no answer",
    canceled: "canceled by the hotline",
    failed: "failed",
  };

  function cardState(call, facts) {
    if (!call.live) {
      const length = call.duration != null && call.answered_at ? `, ${formatDuration(call.duration)}` : "";
      const why = facts.declined ? " (you declined)" : facts.leftRinging && call.status === "no-answer" ? " (you let it ring)" : "";
      const machine = facts.verdict && facts.verdict !== "human" ? `; machine detection: ${verdictWords(facts.verdict)}` : "";
      return `Call ended: ${ENDINGS[call.status] || call.status}${why}${length}${machine}.`;
    }
    if (!call.answered_at) {
      if (facts.leftRinging) {
        const until = ringsUntil.get(call.sid);
        return until ? `Ringing. You let it ring: no answer at ${formatTime(until, callZone(call))}.` : "Ringing. You let it ring until it gives up.";
      }
      return `Ringing… (since ${formatTime(call.created_at, callZone(call))})`;
    }
    const onKeypad = call.sid === current ? " The keypad is on this call." : "";
    if (facts.answeredBy && facts.answeredBy !== "human") {
      const verdict = facts.verdict
        ? `machine detection: ${verdictWords(facts.verdict)}.`
        : "machine detection is listening…";
      return `The voicemail answered: ${verdict}${onKeypad}`;
    }
    const doing = describe(call).replace(/^Connected(: |\.$)/, "");
    const more = doing ? ` ${doing.charAt(0).toUpperCase()}${doing.slice(1)}` : "";
    return `Connected: you answered.${more}${onKeypad}`;
  }

  function renderCard(call) {
    const card = cards.get(call.sid);
    if (!card) return;
    const facts = cardFacts(call.sid);
    const names = calleeNames(call.sid);
    const who = names ? `${names} (${call.to})` : call.to;
    const titleText = call.live
      ? `Incoming call to ${who} from the hotline`
      : `Call from the hotline to ${who} at ${formatTime(call.created_at, callZone(call))}`;
    if (card.title.textContent !== titleText) card.title.textContent = titleText;
    const info = callees.get(call.sid);
    const contactsKey = info && typeof info === "object" ? JSON.stringify(info.contacts) : String(info);
    if (contactsKey !== card.contactsKey) {
      card.contactsKey = contactsKey;
      card.who.replaceChildren();
      if (info && typeof info === "object") {
        // One contact is already named in the title; several sharing the number are each named.
        const several = info.contacts.length > 1;
        for (const contact of info.contacts) {
          const where = contact.school || contact.district;
          const what = `${contact.role_words}${where ? `, ${where}` : ""}${contact.active ? "" : " (inactive)"}`;
          card.who.append(el("li", contact.active ? "" : "inactive", several ? `${contact.name}: ${what}` : what));
        }
        if (!info.contacts.length) card.who.append(el("li", "", "Not a number in the directory."));
      } else if (info === "failed") {
        card.who.append(el("li", "", "The directory could not be read."));
      }
    }
    const stateText = cardState(call, facts);
    if (card.state.textContent !== stateText) card.state.textContent = stateText;
    const ringing = call.live && !call.answered_at;
    const answered = call.live && Boolean(call.answered_at);
    card.item.dataset.state = !call.live ? "ended" : ringing ? "ringing" : facts.answeredBy && facts.answeredBy !== "human" ? "machine" : "connected";
    card.item.classList.toggle("on-keypad", call.sid === current);
    const b = card.buttons;
    b.answer.hidden = b.machine.hidden = b.ring.hidden = b.decline.hidden = !ringing;
    b.ring.disabled = facts.leftRinging;
    b.select.hidden = !answered || call.sid === current;
    b.hangup.hidden = !answered;
    b.dismiss.hidden = call.live;
    if (!call.live && !card.folded && call.sid !== current) foldCard(card);
    renderRingBar();
  }

  async function cardAction(sid, action) {
    const card = cards.get(sid);
    switch (action) {
      case "answer":
      case "machine": {
        const by = action === "answer" ? "human" : "machine";
        const data = await act("Could not answer", "/answer", { call_sid: sid, by });
        if (data) {
          await selectCall(sid);
          showCallScreen();
        }
        break;
      }
      case "ring": {
        const data = await act("Could not let it ring", "/ring", { call_sid: sid });
        if (data) {
          ringsUntil.set(sid, data.rings_until);
          const call = calls.get(sid);
          if (call) renderCard(call);
        }
        break;
      }
      case "decline":
        await act("Could not decline", "/decline", { call_sid: sid });
        break;
      case "select":
        await selectCall(sid);
        break;
      case "hangup":
        await act("Could not hang up", "/hangup", { call_sid: sid });
        break;
      case "dismiss":
        removeCard(sid);
        ui.incomingHeading.focus();
        return;
      default:
        return;
    }
    // The pressed button may be hidden now: keep the focus on its card, not lost on the page.
    const focused = document.activeElement;
    if (card && cards.has(sid) && (!focused || focused === document.body || focused.hidden)) {
      // Not scrolled to: an answered call shows the call screen on a phone-sized screen.
      card.title.focus({ preventScroll: true });
    }
  }

  ui.incoming.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const item = button && button.closest("li[data-sid]");
    if (item) cardAction(item.dataset.sid, button.dataset.action);
  });

  // --- network activity (everything, for the curious) --------------------------------------------

  function logActivity(event) {
    const item = el("li");
    const time = el("time", "", formatTime(event.at));
    time.dateTime = event.at;
    const sid = event.call_sid || event.message_sid || "";
    item.append(time, " ", el("span", `kind kind-${event.kind}`, event.kind), " ");
    if (sid) item.append(el("span", "sid", sid.slice(0, 10) + "…"), " ");
    if (event.language) item.append(el("span", "lang", event.language), " ");
    item.append(el("span", "", event.text));
    ui.activity.append(item);
    while (ui.activity.childElementCount > MAX_ACTIVITY) ui.activity.firstElementChild.remove();
  }

  // --- e-mails the hotline sent (the development outbox) ----------------------------------------

  const mailbox = {
    cursor: 0,
    timer: null,
    failures: 0,
    count: 0,
    open: null, // seq of the e-mail shown
    schedule(ms) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.poll(), ms);
    },
    async poll() {
      let delay = MAIL_POLL_MS;
      try {
        const data = await api("GET", `/emails?cursor=${this.cursor}`);
        if (!data.available) {
          ui.emailsHint.textContent =
            "E-mails go out through SMTP_URL on this install: they are not kept here.";
          ui.noEmails.hidden = true;
          return; // nothing will ever arrive here
        }
        if (data.reset) this.clear();
        for (const item of data.emails) this.add(item);
        if (data.emails.length) {
          const n = data.emails.length;
          ui.emailsNews.textContent = `${n} new e-mail${n === 1 ? "" : "s"}: ${data.emails[n - 1].subject}`;
        }
        this.cursor = data.cursor;
        this.failures = 0;
      } catch (_) {
        // The event feed reports a lost server; just back off.
        this.failures += 1;
        delay = Math.min(10000, MAIL_POLL_MS * 2 ** this.failures);
      }
      this.schedule(delay);
    },
    clear() {
      ui.emails.replaceChildren();
      this.count = 0;
      closeMail();
      this.render();
    },
    add(item) {
      const entry = el("li", "mail-entry");
      const button = el("button", "mail-item");
      button.type = "button";
      button.dataset.seq = String(item.seq);
      button.setAttribute("aria-controls", "mail-view");
      button.setAttribute("aria-expanded", "false");
      const time = el("time", "mail-time", formatTime(item.sent_at));
      time.dateTime = item.sent_at;
      const meta = el("span", "mail-meta", `to ${item.to.join(", ")}`);
      meta.append(" · ", time);
      button.append(el("span", "mail-subject", item.subject || "(no subject)"), meta);
      entry.append(button);
      ui.emails.prepend(entry);
      this.count += 1;
      this.render();
    },
    render() {
      ui.noEmails.hidden = this.count > 0;
      ui.emailCount.textContent = this.count ? `(${this.count})` : "";
    },
  };

  async function openMail(seq, button) {
    let data;
    try {
      data = await api("GET", `/emails/${encodeURIComponent(seq)}`);
    } catch (error) {
      showError(`Could not open the e-mail: ${error.message}`);
      return;
    }
    const mail = data.email;
    for (const other of ui.emails.querySelectorAll("button[aria-expanded='true']")) {
      other.setAttribute("aria-expanded", "false");
    }
    if (button) button.setAttribute("aria-expanded", "true");
    mailbox.open = seq;
    ui.mailSubject.textContent = mail.subject || "(no subject)";
    ui.mailFrom.textContent = mail.from;
    ui.mailTo.textContent = mail.to.join(", ");
    ui.mailDate.textContent = formatDate(mail.sent_at);
    ui.mailText.textContent = mail.text;
    // The HTML part goes into an iframe sandboxed with no permission at all: no scripts, no
    // forms, an opaque origin, and the page's own CSP (nothing loads from elsewhere).
    if (mail.html) {
      ui.mailHtml.srcdoc = mail.html;
      ui.mailHtmlBox.hidden = false;
    } else {
      ui.mailHtml.srcdoc = "";
      ui.mailHtmlBox.hidden = true;
    }
    ui.mailHtmlBox.open = false;
    ui.mailView.hidden = false;
    ui.mailView.focus();
  }

  function closeMail() {
    const button = mailbox.open != null && ui.emails.querySelector(`button[data-seq="${mailbox.open}"]`);
    mailbox.open = null;
    ui.mailView.hidden = true;
    ui.mailHtml.srcdoc = "";
    if (button) {
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }
  }

  ui.emails.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-seq]");
    if (button) openMail(button.dataset.seq, button);
  });
  ui.mailClose.addEventListener("click", closeMail);
  ui.mailView.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeMail();
  });

  // --- texts: the handset's messages ----------------------------------------------------------

  const E164 = /^\+[1-9]\d{1,14}$/;
  const MAX_PICTURES = 10;
  const MAX_PICTURE_BYTES = 5 * 1024 * 1024;

  const texts = {
    conversations: new Map(), // handset number -> conversation (as GET texts gives it)
    busy: false,
    again: false,
    shownKey: "",
    loaded: false,
    // Read every conversation again (the feed brought an sms event, or the page opened).
    async refresh() {
      if (this.busy) {
        this.again = true;
        return;
      }
      this.busy = true;
      try {
        const data = await api("GET", "/texts");
        this.conversations = new Map(data.conversations.map((c) => [c.handset, c]));
        this.render();
      } catch (_) {
        // The event feed reports a lost server; the next sms event tries again.
      } finally {
        this.busy = false;
      }
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    },
    put(conversation) {
      this.conversations.set(conversation.handset, conversation);
      this.stick = true; // your own text: show it and what follows
      this.render();
    },
    // The conversation follows its newest text unless the reader scrolled back to read.
    stick: true,
    follow() {
      if (this.stick) ui.thread.scrollTop = ui.thread.scrollHeight;
    },
    number() {
      return ui.texter.value.trim();
    },
    render() {
      const number = this.number();
      const conversation = this.conversations.get(number) || { handset: number, opted_out: false, reachable: true, texts: [] };
      this.renderPicker(number);
      ui.threadTitle.textContent = E164.test(number) ? `Texts of ${number}` : "Texts";
      ui.optoutNote.hidden = !conversation.opted_out;
      ui.textReachable.checked = conversation.reachable;
      ui.textReachable.disabled = !E164.test(number);
      const key = `${number}|${JSON.stringify(conversation.texts)}`;
      if (key === this.shownKey) return;
      const before = this.shownKey.split("|")[0] === number ? ui.thread.childElementCount : null;
      this.shownKey = key;
      ui.thread.replaceChildren(...conversation.texts.map((text) => textItem(text)));
      if (before === null) this.stick = true;
      this.follow();
      // New texts from the hotline or the network, said once.
      if (before !== null && this.loaded) {
        const fresh = conversation.texts.slice(before).filter((t) => t.sender !== "handset");
        if (fresh.length) ui.textsNews.textContent = fresh.map((t) => `${SENDERS[t.sender]}: ${t.body}`).join(" ");
      }
      this.loaded = true;
    },
    renderPicker(number) {
      const others = [...this.conversations.keys()].filter((n) => n !== number);
      ui.conversationPickBox.hidden = others.length === 0;
      const key = [number, ...others].join("|");
      if (ui.conversationPick.dataset.key === key) return;
      ui.conversationPick.dataset.key = key;
      const current = el("option", "", "Choose a phone…");
      current.value = "";
      ui.conversationPick.replaceChildren(
        current,
        ...others.map((other) => {
          const option = el("option", "", `${other} (${this.conversations.get(other).texts.length} texts)`);
          option.value = other;
          return option;
        }),
      );
    },
  };

  const SENDERS = { handset: "You", hotline: "Hotline", network: "Network (carrier)" };

  const STATES = {
    queued: "queued at the network…",
    sent: "sent, on its way…",
    delivered: "delivered",
    undelivered: "undelivered",
    failed: "not delivered: blocked",
  };

  const KEYWORDS = {
    STOP: "STOP: the network unsubscribed this phone (and still passed the text to the hotline)",
    START: "START: the network subscribed this phone again (and passed the text on)",
    HELP: "HELP: the network answered with its help text (and passed the text on)",
  };

  function textItem(text) {
    const item = el("li", `sms ${text.direction} sender-${text.sender}`);
    item.dataset.sid = text.sid;
    item.dataset.sender = text.sender;
    item.dataset.status = text.status;
    item.append(el("span", "who", SENDERS[text.sender] || text.sender));
    if (text.body) item.append(el("span", "body", text.body));
    if (text.media.length) {
      const pictures = el("span", "pictures");
      for (const media of text.media) {
        if (text.direction === "from-handset") {
          const image = el("img", "picture");
          image.src = media.url;
          image.alt = `Picture ${media.index + 1} you sent (${media.content_type || "image"})`;
          image.loading = "lazy";
          pictures.append(image);
        } else {
          // The hotline's own media URL: shown, not fetched (it may be anywhere).
          pictures.append(el("span", "media-url", `picture: ${media.url}`));
        }
      }
      item.append(pictures);
    }
    const meta = el("span", "meta");
    const time = el("time", "", formatTime(text.at));
    time.dateTime = text.at;
    meta.append(time);
    const notes = [];
    if (text.sender === "handset") {
      if (text.keyword) notes.push(KEYWORDS[text.keyword] || text.keyword);
      if (text.error_code) notes.push(`the hotline's answer went nowhere (error ${text.error_code}: ${text.error})`);
    } else if (text.sender === "hotline") {
      notes.push(text.via === "reply" ? "its answer to your text" : "sent by the hotline later");
    } else {
      notes.push("the carrier's own answer, as Twilio gives it");
    }
    if (text.sender === "hotline") {
      const state = el("span", "state", STATES[text.status] || text.status);
      if (text.error_code) state.append(` (error ${text.error_code}: ${text.error})`);
      meta.append(" · ", state);
    }
    for (const note of notes) meta.append(" · ", note);
    item.append(meta);
    return item;
  }

  function readPicture(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.addEventListener("load", () => resolve(String(reader.result).replace(/^data:[^,]*,/, "")));
      reader.addEventListener("error", () => reject(reader.error || new Error("could not read the file")));
      reader.readAsDataURL(file);
    });
  }

  function describePictures() {
    const files = [...ui.textPictures.files];
    if (!files.length) {
      ui.textPicturesChosen.textContent = "At most 10, 5 MB in all.";
      return;
    }
    const size = files.reduce((sum, f) => sum + f.size, 0);
    ui.textPicturesChosen.textContent = `${files.length} picture${files.length === 1 ? "" : "s"}, ${Math.ceil(size / 1024)} kB: ${files.map((f) => f.name).join(", ")}`;
  }

  async function sendText(event) {
    event.preventDefault();
    const from = texts.number();
    if (!E164.test(from)) {
      showError("Texts need a number in E.164 form, e.g. +15555550123 (a text cannot be anonymous).", ui.textError);
      ui.texter.focus();
      return;
    }
    const files = [...ui.textPictures.files];
    const body = ui.textBody.value;
    if (!body.trim() && !files.length) {
      showError("Type a message or attach a picture.", ui.textError);
      ui.textBody.focus();
      return;
    }
    if (files.length > MAX_PICTURES || files.reduce((sum, f) => sum + f.size, 0) > MAX_PICTURE_BYTES) {
      showError("At most 10 pictures, 5 MB in all: a text carries no more.", ui.textError);
      return;
    }
    ui.textSend.disabled = true;
    try {
      let media;
      try {
        media = await Promise.all(
          files.map(async (file) => ({ content_type: file.type, data_base64: await readPicture(file) })),
        );
      } catch (error) {
        showError(`Could not read the picture: ${error.message}`, ui.textError);
        return;
      }
      const data = await act("Could not send the text", "/texts", { from, body, media }, ui.textError);
      if (data) {
        texts.put(data.conversation);
        ui.textBody.value = "";
        ui.textPictures.value = "";
        describePictures();
      }
    } finally {
      ui.textSend.disabled = false;
    }
  }

  ui.textForm.addEventListener("submit", sendText);
  ui.thread.addEventListener("scroll", () => {
    const list = ui.thread;
    texts.stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  });
  // A picture that loads after the conversation was drawn makes it taller.
  ui.thread.addEventListener("load", () => texts.follow(), true);
  ui.textPictures.addEventListener("change", describePictures);
  ui.texter.addEventListener("input", () => texts.render());
  ui.conversationPick.addEventListener("change", () => {
    if (!ui.conversationPick.value) return;
    ui.texter.value = ui.conversationPick.value;
    texts.render();
    ui.texter.focus();
  });
  ui.textReachable.addEventListener("change", async () => {
    const number = texts.number();
    const data = await act("Could not switch the phone", "/texts/reachable", {
      number,
      reachable: ui.textReachable.checked,
    }, ui.textError);
    if (data) texts.put(data.conversation);
    else texts.render();
  });

  feed.on((events) => {
    if (events.some((event) => event.channel === "sms")) texts.refresh();
  });

  // --- actions -----------------------------------------------------------------------------------

  async function dial() {
    const caller = ui.caller.value.trim();
    const store = storage();
    if (store && caller) store.setItem(CALLER_KEY, caller);
    if (!caller) {
      showError("Enter your caller number first (e.g. +15555550123).");
      ui.caller.focus();
      return;
    }
    dialing = true;
    ui.dial.disabled = true;
    current = null;
    ui.transcript.replaceChildren();
    ui.status.textContent = lastStatusText = "Calling the hotline…";
    const data = await act("Could not call", "/dial", { from: caller });
    dialing = false;
    if (data && data.call_sid) {
      mine.add(data.call_sid);
      myCall = data.call_sid;
      updateCall(data.call);
      setCurrent(data.call_sid);
      showCallScreen();
      for (const call of calls.values()) {
        renderCallRow(call);
        if (cards.has(call.sid)) renderCard(call);
      }
    } else {
      renderCurrent();
    }
  }

  // A call starts with its status, the transcript and the keypad in view: when the keypad is
  // out of view (a phone-sized screen stacks them; cards ringing above push them down), the
  // status line (side by side: the phone's and the transcript's cards) goes to the top of the
  // window, under the ring bar.
  function showCallScreen() {
    // Room for the ring bar whenever a call rings: it shows as soon as its card scrolls away.
    const ringing = [...ui.incoming.children].some((item) => item.dataset.state === "ringing");
    const bar = ringing ? Math.max(ui.ringBar.getBoundingClientRect().height, 56) : 0;
    const status = ui.status.getBoundingClientRect();
    const keys = ui.keypad.querySelector(".keys").getBoundingClientRect();
    if (status.top >= bar && keys.bottom <= window.innerHeight) return;
    // Side by side (a wide window), the phone's and the transcript's cards start together.
    const phone = ui.status.closest("section").getBoundingClientRect();
    const side = ui.transcript.closest("section").getBoundingClientRect();
    const top = side.left >= phone.right ? Math.min(phone.top, side.top) : status.top;
    window.scrollTo({ top: Math.max(0, top + window.scrollY - bar - 8) });
  }

  function press(keys) {
    if (!current) return;
    const button = ui.keypad.querySelector(`button[data-key="${CSS.escape(keys)}"]`);
    if (button) {
      button.classList.add("pressed");
      setTimeout(() => button.classList.remove("pressed"), 150);
    }
    act(`Could not press ${keys}`, "/digits", { call_sid: current, digits: keys });
  }

  function hangUp() {
    if (!current) return;
    act("Could not hang up", "/hangup", { call_sid: current });
  }

  ui.dial.addEventListener("click", dial);
  ui.hangup.addEventListener("click", hangUp);
  ui.caller.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !ui.dial.disabled) dial();
  });
  ui.keypad.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-key]");
    if (button) press(button.dataset.key);
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || !current) return;
    const target = event.target;
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
    if (/^[0-9*#]$/.test(event.key) && !ui.keypad.disabled) {
      event.preventDefault();
      press(event.key);
    }
  });

  ui.speechForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = ui.speech.value.trim();
    if (!text || !current) return;
    const data = await act("Could not say that", "/speech", { call_sid: current, text });
    if (data) ui.speech.value = "";
  });

  ui.recordingForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = ui.recording.value.trim();
    if (!current) return;
    if (!text) {
      showError("Type what you say in the recording first.");
      ui.recording.focus();
      return;
    }
    const data = await act("Could not send the recording", "/recording", { call_sid: current, text });
    if (data) ui.recording.value = "";
  });

  // --- the microphone (optional): record, convert to an 8 kHz WAV, send ---------------------------

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder && window.AudioContext) {
    ui.mic.hidden = false;
    ui.mic.addEventListener("click", () => (recorder ? stopMic(true) : startMic()));
  }

  async function startMic() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      showError(`No microphone: ${error.message}`);
      return;
    }
    micChunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (event) => micChunks.push(event.data));
    recorder.start();
    ui.mic.setAttribute("aria-pressed", "true");
    ui.mic.textContent = "Stop and send recording";
  }

  function stopMic(send) {
    const active = recorder;
    recorder = null;
    ui.mic.setAttribute("aria-pressed", "false");
    ui.mic.textContent = "Record with microphone";
    if (!active) return;
    active.addEventListener("stop", async () => {
      for (const track of active.stream.getTracks()) track.stop();
      if (!send || !current) return;
      try {
        const blob = new Blob(micChunks, { type: active.mimeType });
        const wav = await toWav(await blob.arrayBuffer());
        await act("Could not send the recording", "/recording", {
          call_sid: current,
          audio_wav_base64: toBase64(wav),
        });
      } catch (error) {
        showError(`Could not convert the recording: ${error.message}`);
      }
    });
    active.stop();
  }

  async function toWav(encoded) {
    const context = new AudioContext();
    let decoded;
    try {
      decoded = await context.decodeAudioData(encoded);
    } finally {
      context.close();
    }
    const rate = 8000;
    const length = Math.max(1, Math.ceil(decoded.duration * rate));
    const offline = new OfflineAudioContext(1, length, rate);
    const source = offline.createBufferSource();
    source.buffer = decoded;
    source.connect(offline.destination);
    source.start();
    const samples = (await offline.startRendering()).getChannelData(0);
    const buffer = new ArrayBuffer(44 + samples.length * 2);
    const view = new DataView(buffer);
    const ascii = (offset, text) => [...text].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
    ascii(0, "RIFF");
    view.setUint32(4, 36 + samples.length * 2, true);
    ascii(8, "WAVEfmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, rate, true);
    view.setUint32(28, rate * 2, true);
    view.setUint16(32, 2, true);
    view.setUint16(34, 16, true);
    ascii(36, "data");
    view.setUint32(40, samples.length * 2, true);
    samples.forEach((sample, i) => {
      const s = Math.max(-1, Math.min(1, sample));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    });
    return new Uint8Array(buffer);
  }

  function toBase64(bytes) {
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  // --- start -------------------------------------------------------------------------------------

  // The caller number survives a reload of this tab (each tab can play its own caller).
  const CALLER_KEY = "devphone.caller";
  function storage() {
    try {
      return window.sessionStorage;
    } catch (_) {
      return null;
    }
  }
  ui.caller.addEventListener("change", () => {
    const store = storage();
    if (store) store.setItem(CALLER_KEY, ui.caller.value.trim());
  });

  async function start() {
    const saved = storage() && storage().getItem(CALLER_KEY);
    if (saved) ui.caller.value = saved;
    try {
      const state = await api("GET", "/state");
      feed.cursor = state.cursor;
      showTimeZone(state.time_zone);
      showPatience(state.patience);
      for (const call of state.calls) updateCall(call);
      // Calls the hotline placed that still ring (or are answered) get their cards back, in the
      // order they were placed.
      const ringing = state.calls.filter((c) => c.live && c.direction !== "inbound");
      await Promise.all(
        ringing.map(async (call) => {
          try {
            const log = await api("GET", `/calls/${encodeURIComponent(call.sid)}`);
            for (const event of log.events) remember(event);
          } catch (_) {
            // The card shows what the call itself says.
          }
        }),
      );
      for (const call of ringing) ensureCard(calls.get(call.sid) || call);
      // A reloaded page picks up this caller's live call where it was.
      const own = state.calls.filter((c) => c.live && c.direction === "inbound" && c.from === ui.caller.value.trim());
      if (own.length) {
        const resumed = await api("GET", `/calls/${encodeURIComponent(own[own.length - 1].sid)}`);
        for (const event of resumed.events) remember(event);
        mine.add(resumed.call.sid);
        myCall = resumed.call.sid;
        updateCall(resumed.call);
        setCurrent(resumed.call.sid);
      }
    } catch (error) {
      showError(`Could not reach the dev phone API: ${error.message}`);
    }
    renderCurrent();
    renderSwitch();
    root.dataset.ready = "true";
    feed.poll();
    mailbox.poll();
    texts.render();
    await texts.refresh();
    root.dataset.textsReady = "true";
  }

  start();
})();
