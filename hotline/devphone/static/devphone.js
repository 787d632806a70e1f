// The dev phone: a handset on the simulated phone network, in the browser.
//
// Every action goes to /dev/phone/api/... which drives the simulator's handset API; the simulator
// then posts the real signed webhooks to the app. What happens comes back as one event feed
// (GET events?cursor=N), polled a few times a second. The feed is general: each event has a
// channel ("call", "sms", "network"), a call or message sid and the handset concerned, so the
// same loop can later feed incoming alert calls to contacts and an SMS / e-mail inbox: add a
// listener with `feed.on(fn)`.
"use strict";

(() => {
  const root = document.getElementById("devphone");
  if (!root) return;
  const API = root.dataset.api;
  const POLL_MS = 600;
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
    callsBody: document.querySelector("#calls tbody"),
    noCalls: $("no-calls"),
    activity: $("activity"),
  };

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
  function act(label, path, body) {
    const run = async () => {
      try {
        const data = await api("POST", path, body);
        clearError();
        if (data.call) updateCall(data.call);
        return data;
      } catch (error) {
        showError(`${label}: ${error.message}`);
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
  const eventsByCall = new Map(); // sid -> [event]
  let keptEvents = 0;
  let current = null; // sid of the call this phone is on
  let lastShownSeq = 0;
  let dialing = false;
  let recorder = null; // the microphone's MediaRecorder while recording
  let micChunks = [];

  function remember(event) {
    if (!event.call_sid) return;
    let list = eventsByCall.get(event.call_sid);
    if (!list) eventsByCall.set(event.call_sid, (list = []));
    list.push(event);
    keptEvents += 1;
    if (keptEvents > MAX_EVENTS_KEPT) {
      // Forget the oldest finished calls' events (the call log keeps their rows).
      for (const [sid, events] of eventsByCall) {
        if (sid === current) continue;
        eventsByCall.delete(sid);
        keptEvents -= events.length;
        if (keptEvents <= MAX_EVENTS_KEPT / 2) break;
      }
    }
  }

  function updateCall(call) {
    calls.set(call.sid, call);
    renderCallRow(call);
    if (call.sid === current) renderCurrent();
  }

  function setCurrent(sid) {
    current = sid;
    lastShownSeq = 0;
    ui.transcript.replaceChildren();
    for (const event of eventsByCall.get(sid) || []) showInTranscript(event);
    renderCurrent();
  }

  function currentCall() {
    return current ? calls.get(current) : null;
  }

  feed.on((events, infos) => {
    for (const info of infos) updateCall(info);
    for (const event of events) {
      remember(event);
      logActivity(event);
      if (event.call_sid && event.call_sid === current) showInTranscript(event);
    }
  });

  // --- what the hotline says (the transcript) ----------------------------------------------------

  const TECHNICAL = new Set(["webhook", "redirect", "update", "answer", "amd", "call"]);

  function showInTranscript(event) {
    if (event.seq <= lastShownSeq) return;
    lastShownSeq = event.seq;
    const line = transcriptLine(event);
    if (!line) return;
    line.dataset.seq = String(event.seq);
    line.dataset.kind = event.kind;
    const last = ui.transcript.lastElementChild;
    if (last && last.dataset.listening && (event.kind === "say" || event.kind === "play")) {
      // The prompts nested in a <Gather> come after its event: show them before "listening".
      last.before(line);
    } else {
      ui.transcript.append(line);
    }
    line.scrollIntoView({ block: "nearest" });
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
        return line("Hotline", "hotline", `plays ${event.text.startsWith("DTMF") ? "tones" : "audio"}: ${event.text}`);
      case "pause":
        return line("", "system", `pause (${event.text})`);
      case "gather": {
        const item = line("", "system", gatherText(event.text, detail.input));
        if (event.text.startsWith("listening")) item.dataset.listening = "true";
        return item;
      }
      case "record":
        return line("", "system", event.text === "beep" ? "Beep. Recording: say your message, then #." : event.text);
      case "recording":
        return line("You", "you", `recorded (${detail.duration || "?"} s): ${event.text}`);
      case "dtmf":
        return line("You", `you${unheard ? " unheard" : ""}`, `pressed ${event.text}${unheard ? " (nothing was listening)" : ""}`);
      case "speech":
        return line("You", `you${unheard ? " unheard" : ""}`, `said “${event.text}”${unheard ? " (nothing was listening)" : ""}`);
      case "hangup":
        return line("", "system", event.text === "the handset hung up" ? "You hung up." : `Hung up: ${event.text}`);
      case "reject":
        return line("", "system", `The hotline rejected the call (${event.text}).`);
      case "dial":
        return line("", "system", `Connecting: ${event.text}`);
      case "status":
        return statusLine(event.text);
      case "error":
        return errorLine(event.text);
      case "warning":
        return line("Warning", "warning", event.text);
      default:
        return TECHNICAL.has(event.kind) ? null : line("", "system", `${event.kind}: ${event.text}`);
    }
  }

  function gatherText(text, inputs) {
    if (text.startsWith("listening")) {
      const what = (inputs || "").split(" ").filter(Boolean).map((i) => (i === "dtmf" ? "keypad" : i));
      return `The hotline is listening for ${what.join(" or ") || "input"}.`;
    }
    return `No input: ${text.replace(/^no input: /, "")}`;
  }

  const FINAL = new Set(["completed", "busy", "failed", "no-answer", "canceled"]);

  function statusLine(status) {
    if (status === "in-progress") return line("", "system", "Connected.");
    if (FINAL.has(status)) return line("", "system ended", `Call ended (${status}).`);
    return null;
  }

  function errorLine(text) {
    const item = line("Error", "error", `Application error ${text}`);
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
  function renderCurrent() {
    const call = currentCall();
    const live = Boolean(call && call.live);
    const text = describe(call);
    if (text !== lastStatusText) {
      ui.status.textContent = text;
      lastStatusText = text;
    }
    ui.status.dataset.state = call ? (call.live ? call.waiting_for || call.status : "ended") : "idle";
    ui.hangup.disabled = !live;
    ui.dial.disabled = live || dialing;
    ui.caller.readOnly = live;
    ui.keypad.disabled = !live;
    ui.speechForm.querySelector("fieldset").disabled = !live;
    ui.recordingForm.querySelector("fieldset").disabled = !live;
    if (!live && recorder) stopMic(false);
  }

  function showError(message) {
    ui.error.textContent = message;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = "";
  }

  // --- the call log ------------------------------------------------------------------------------

  function formatTime(iso) {
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? iso : when.toLocaleTimeString();
  }

  function formatDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function callLabel(call) {
    if (call.direction === "inbound") return `${call.from} called the hotline`;
    // Outbound calls (alerts to contacts): a later page answers them here.
    return `Hotline called ${call.to}`;
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
    const time = el("time", "", formatTime(call.created_at));
    time.dateTime = call.created_at;
    cells[0].replaceChildren(time);
    cells[1].textContent = callLabel(call) + (call.sid === current ? " (this phone)" : "");
    cells[1].title = call.sid;
    cells[2].textContent = call.live && call.waiting_for ? `${call.status}, ${call.waiting_for}` : call.status;
    cells[3].textContent = call.duration != null ? formatDuration(call.duration) : "";
    row.classList.toggle("live", call.live);
    row.classList.toggle("current", call.sid === current);
  }

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
      setCurrent(data.call_sid);
      updateCall(data.call);
      for (const call of calls.values()) renderCallRow(call);
    } else {
      renderCurrent();
    }
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
      for (const call of state.calls) updateCall(call);
      // A reloaded page picks up this caller's live call where it was.
      const mine = state.calls.filter((c) => c.live && c.direction === "inbound" && c.from === ui.caller.value.trim());
      if (mine.length) {
        const resumed = await api("GET", `/calls/${encodeURIComponent(mine[mine.length - 1].sid)}`);
        for (const event of resumed.events) remember(event);
        setCurrent(resumed.call.sid);
        updateCall(resumed.call);
      }
    } catch (error) {
      showError(`Could not reach the dev phone API: ${error.message}`);
    }
    renderCurrent();
    root.dataset.ready = "true";
    feed.poll();
  }

  start();
})();
