// hotline web simulator: a feature phone that speaks the gateways' wire protocols.
// USSD: POST /ussd/africastalking (form: sessionId, serviceCode, phoneNumber, networkCode,
// text = every input of the session joined by "*"); the answer is "CON …" or "END …".
// Call: POST /ivr/twilio/voice like Twilio does, then follow the TwiML: <Play> URLs are
// played in order, <Gather> collects keys and posts Digits to its action URL, <Redirect>
// is followed, <Hangup> ends the call. SMS: GET /sms/kannel like smsbox's get-url
// (from, to, text, coding, charset, id); the answer's body is the reply (none: no SMS),
// shown joined in the message thread with the parts it takes over the air.
// Same origin, no libraries, no build step.
// After every answer the page tells the inspector (inspector.js) which session to show
// (a "hotline:turn" event); in a call, the transcript lists each clip's sentence (asked of
// the simulator-only /simulator/api/speech, since clip URLs are sealed) and the keys.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const screenEl = $("screen"), display = $("display"), entryEl = $("entry");
  const statusEl = $("status"), budgetEl = $("budget"), logEl = $("log"), audio = $("audio");
  const transcriptEl = $("transcript"), transcriptCard = $("transcript-card");
  const threadEl = $("thread"), composeEl = $("compose");
  const GSM7 = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM7_EXT = "^{}\\[~]|€\f";

  // `heard`: every clip URL of the current (or last) call, in order.
  const sim = { state: "idle", entry: "", session: null, inputs: [], call: null, heard: [] };
  window.hotlineSim = sim; // for the browser tests and the curious

  const mode = () => document.querySelector("input[name=mode]:checked").value;
  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)),
    (b) => b.toString(16).padStart(2, "0")).join("");

  // One numbered line; the number is its own box (as wide as it needs: 10, 100 …),
  // `full` (when given) is the whole answer, shown on hover.
  function log(line, full) {
    const li = document.createElement("li");
    const n = document.createElement("span");
    n.className = "n";
    n.setAttribute("aria-hidden", "true");
    n.textContent = String(logEl.children.length + 1);
    const text = document.createElement("span");
    text.className = "t";
    text.textContent = line;
    if (full !== undefined) li.title = full;
    li.append(n, " ", text);
    logEl.appendChild(li);
    logEl.scrollTop = logEl.scrollHeight;
  }

  // The inspector shows this session (inspector.js listens). An SMS has no session id
  // the handset knows: the inspector finds the session by the message id (`message`).
  function turnTaken(channel, session, message) {
    document.dispatchEvent(new CustomEvent("hotline:turn", { detail: { channel, session, message } }));
  }

  // ---- Call transcript: what is said (a line per clip) and the keys pressed ----------
  function transcriptLine(kind, text) {
    const li = document.createElement("li");
    li.className = kind;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = kind === "said" ? "says" : kind === "keys" ? "keys" : "";
    const body = document.createElement("span");
    body.className = "what";
    body.textContent = text;
    li.append(who, " ", body);
    transcriptEl.appendChild(li);
    transcriptEl.scrollTop = transcriptEl.scrollHeight;
    return li;
  }

  // A clip's sentence, asked of the server (the URL is sealed); shown when it arrives.
  function transcriptClip(url, call) {
    const li = transcriptLine("said", "…");
    li.dataset.url = url;
    const text = fetch(`/simulator/api/speech?url=${encodeURIComponent(url)}`)
      .then((r) => (r.ok ? r.json() : { text: null }))
      .then((j) => j.text, () => null)
      .then((said) => {
        li.querySelector(".what").textContent = said ?? "(a clip this server does not know)";
        li.classList.toggle("unknown", said == null);
        if (said != null && call.playingUrl === url && sim.call === call) callShow([call.clipLabel, "", `“${said}”`]);
        return said;
      });
    return { li, text };
  }

  function transcriptKey(call, k) {
    if (!call.keysLine) call.keysLine = transcriptLine("keys", "");
    const what = call.keysLine.querySelector(".what");
    what.textContent += k;
  }

  // The first line of a screen; "…" only when more of it follows.
  function firstLine(text) {
    const lines = text.split("\n");
    return lines.length > 1 ? `${lines[0]} …` : lines[0];
  }

  function setState(state, status) {
    sim.state = state;
    screenEl.dataset.state = state;
    if (status !== undefined) statusEl.textContent = status;
  }

  function setEntry(text) { sim.entry = text; entryEl.textContent = text; }

  function budget(text) {
    const gsm = [...text].every((ch) => GSM7.includes(ch) || GSM7_EXT.includes(ch));
    if (gsm) {
      const used = [...text].reduce((n, ch) => n + (GSM7_EXT.includes(ch) ? 2 : 1), 0);
      return `${used}/182 GSM-7`;
    }
    let units = 0;
    for (const ch of text) units += ch.codePointAt(0) > 0xffff ? 2 : 1;
    return `${units}/80 UCS-2`;
  }

  // ---- SMS -----------------------------------------------------------------------
  // The parts a text takes over the air, cut as sms/segments.py cuts them: GSM-7 when
  // every character fits (160 septets alone, 153 a part; `^{}\[~]|€` cost two), else
  // UCS-2 (70 units alone, 67 a part; a character outside the BMP is two units); a
  // character is never split across parts. `ucs2` forces UCS-2 (the gateway said so).
  function smsParts(text, ucs2) {
    const chars = [...text];
    const gsm = !ucs2 && chars.every((ch) => GSM7.includes(ch) || GSM7_EXT.includes(ch));
    const cost = (ch) => (gsm ? (GSM7_EXT.includes(ch) ? 2 : 1) : (ch.codePointAt(0) > 0xffff ? 2 : 1));
    const units = chars.reduce((n, ch) => n + cost(ch), 0);
    const encoding = gsm ? "GSM-7" : "UCS-2";
    if (units <= (gsm ? 160 : 70)) return { encoding, units, parts: [text] };
    const limit = gsm ? 153 : 67;
    const parts = [];
    let part = "", used = 0;
    for (const ch of chars) {
      if (used + cost(ch) > limit) { parts.push(part); part = ""; used = 0; }
      part += ch;
      used += cost(ch);
    }
    parts.push(part);
    return { encoding, units, parts };
  }

  sim.smsParts = smsParts; // for the browser tests

  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  // One message in the thread: `mo` (sent), `mt` (received), `note` (what happened).
  function bubble(kind, text, meta) {
    const li = document.createElement("li");
    li.className = kind;
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = text;
    li.append(body);
    if (meta) {
      const small = document.createElement("div");
      small.className = "meta";
      small.textContent = meta;
      li.append(small);
    }
    threadEl.appendChild(li);
    threadEl.scrollTop = threadEl.scrollHeight;
    return li;
  }

  function composeBudget() {
    const text = composeEl.value;
    if (!text) { budgetEl.textContent = ""; return; }
    const split = smsParts(text);
    budgetEl.textContent = `${split.units} ${split.encoding === "GSM-7" ? "septets" : "units"} · ${plural(split.parts.length, "part")}`;
  }

  async function smsSend() {
    const text = composeEl.value;
    if (!text.trim() || sim.sending) return;
    const to = $("smsto").value.trim();
    const id = "sim" + hex(8);
    const mine = smsParts(text);
    const query = new URLSearchParams({
      from: $("msisdn").value.trim(), to, text,
      coding: mine.encoding === "GSM-7" ? "0" : "2", charset: "UTF-8", id,
    });
    composeEl.value = "";
    setEntry("");
    composeBudget();
    bubble("mo", text, `${plural(mine.parts.length, "part")} · ${mine.encoding}`);
    log(`→ SMS ${to} "${firstLine(text)}"`, text);
    sim.sending = true;
    setState("sms", `SMS ${to} · sending…`);
    try {
      let response, answer;
      try {
        response = await fetch(`/sms/kannel?${query}`, { cache: "no-store" });
        answer = await response.text();
      } catch (err) {
        log(`← ${err.message}`);
        bubble("note", `Not sent: ${err.message}`);
        return;
      }
      if (!response.ok) {
        log(`← HTTP ${response.status}: ${answer.slice(0, 200)}`);
        bubble("note", `Not delivered (HTTP ${response.status}: ${answer.slice(0, 120)})`);
        return;
      }
      if (!answer) {
        log("← (no reply)");
        bubble("note", "(no reply)");
        return;
      }
      const split = smsParts(answer, response.headers.get("X-Kannel-Coding") === "2");
      const li = bubble("mt", answer, `${plural(split.parts.length, "part")} · ${split.encoding}`);
      li.dataset.parts = String(split.parts.length);
      li.dataset.encoding = split.encoding;
      log(`← SMS ${firstLine(answer)} (${plural(split.parts.length, "part")})`, answer);
      turnTaken("sms", null, id);
    } finally {
      sim.sending = false;
      if (mode() === "sms") setState("sms", `SMS ${to}`);
    }
  }

  async function post(url, fields) {
    const body = new URLSearchParams(fields);
    const response = await fetch(url, {
      method: "POST", body,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`);
    return { text, url: response.url };
  }

  // ---- USSD ----------------------------------------------------------------------
  async function ussdSend() {
    const fields = {
      sessionId: sim.session, serviceCode: sim.code, phoneNumber: $("msisdn").value.trim(),
      networkCode: "46000", text: sim.inputs.join("*"),
    };
    log(`→ USSD ${fields.serviceCode} text="${fields.text}"`);
    let answer;
    try {
      answer = (await post("/ussd/africastalking", fields)).text;
    } catch (err) {
      log(`← ${err.message}`);
      display.textContent = `Connection problem or invalid MMI code.\n${err.message}`;
      setState("end", "error");
      return;
    }
    const ends = answer.startsWith("END ");
    const body = answer.replace(/^(CON|END) /, "");
    log(`← ${answer.slice(0, 3)} ${firstLine(body)}`, answer);
    display.textContent = body;
    budgetEl.textContent = budget(body);
    setEntry("");
    setState(ends ? "end" : "ussd", `USSD ${sim.code} · ${ends ? "END" : "CON"}`);
    turnTaken("ussd", fields.sessionId);
  }

  // A typed code as the Africa's Talking gateway splits it: the service code it is
  // registered for, and whatever the subscriber dialled after it as the first `text`.
  // `*100*1*2#` with `*100#` registered → service code `*100#`, inputs ["1", "2"].
  // The registered code is the "USSD code" field (set it for shared codes like
  // `*384*55#`); a code that does not extend it is split after its first number.
  function directDial(typed, registered) {
    const base = /^\*[0-9*]*#$/.test(registered) ? registered.slice(0, -1) : "";
    const dialled = typed.slice(0, -1);
    if (base && (dialled === base || dialled.startsWith(base + "*"))) {
      const rest = dialled.slice(base.length + 1);
      return { code: registered, inputs: rest ? rest.split("*") : [] };
    }
    const [first, ...rest] = dialled.slice(1).split("*");
    return { code: `*${first}#`, inputs: rest };
  }

  sim.directDial = directDial; // for the browser tests

  function ussdDial() {
    const typed = sim.entry;
    const registered = $("code").value.trim();
    const dial = /^\*[0-9]+(\*[0-9]*)*#$/.test(typed)
      ? directDial(typed, registered) : { code: registered, inputs: [] };
    sim.code = dial.code;
    sim.inputs = dial.inputs;
    sim.session = "ATUid_" + hex(16);
    setEntry("");
    display.textContent = `Dialling ${typed && dial.inputs.length ? typed : sim.code}…`;
    return ussdSend();
  }

  function ussdReply() {
    if (!sim.entry) return Promise.resolve();
    sim.inputs.push(sim.entry);
    return ussdSend();
  }

  // ---- Call (TwiML) ----------------------------------------------------------------
  function callFields(extra) {
    return {
      CallSid: sim.call.sid, AccountSid: sim.call.account, From: $("msisdn").value.trim(),
      To: $("hotline").value.trim(), Direction: "inbound", ApiVersion: "2010-04-01",
      CallStatus: "in-progress", ...extra,
    };
  }

  function callShow(lines) {
    display.textContent = [`☎ ${$("hotline").value.trim()}`, "", ...lines].join("\n");
  }

  function tick(call) {
    if (sim.call !== call) return;
    const seconds = Math.floor((Date.now() - call.started) / 1000);
    const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
    statusEl.textContent = `In call · ${mm}:${String(seconds % 60).padStart(2, "0")}`;
    budgetEl.textContent = call.gather ? "keys open" : "";
  }

  async function callFetch(url, extra) {
    const call = sim.call;
    let answer;
    try {
      log(`→ CALL ${new URL(url, location.href).pathname} ${extra.Digits !== undefined ? "Digits=" + extra.Digits : ""}`);
      answer = await post(url, callFields(extra));
    } catch (err) {
      log(`← ${err.message}`);
      callShow(["The call failed.", err.message]);
      hangUp(false);
      return;
    }
    turnTaken("ivr", call.sid);
    if (sim.call !== call) return; // hung up meanwhile
    tick(call);
    const xml = new DOMParser().parseFromString(answer.text, "application/xml");
    if (xml.querySelector("parsererror")) {
      log("← answer is not TwiML");
      hangUp(false);
      return;
    }
    await runVerbs(Array.from(xml.documentElement.children), answer.url, call);
  }

  function playClip(url, call, index, total) {
    return new Promise((resolve) => {
      if (sim.call !== call) return resolve();
      call.playing.push(url);
      sim.heard.push(url);
      const path = new URL(url, location.href).pathname;
      call.playingUrl = url;
      call.clipLabel = `▶ clip ${index} of ${total}${call.gather ? " · listening for keys" : ""}`;
      callShow([call.clipLabel]);
      const line = transcriptClip(url, call).li;
      log(`♪ ${path.length > 40 ? path.slice(0, 39) + "…" : path}`);
      audio.src = url;
      let ended = false;
      const done = () => {
        if (!ended) { line.classList.add("cut"); line.title = "cut short by a key or the hang-up"; }
        audio.onended = audio.onerror = null; call.stop = null; call.playingUrl = null; resolve();
      };
      audio.onended = () => { ended = true; done(); };
      call.stop = done;
      audio.onerror = () => { ended = true; log("♪ could not play that clip"); done(); };
      audio.play().catch(() => done());
    });
  }

  async function runVerbs(verbs, baseUrl, call) {
    for (let i = 0; i < verbs.length; i += 1) {
      if (sim.call !== call) return;
      const verb = verbs[i];
      const abs = (u) => new URL(u, baseUrl).href;
      switch (verb.tagName) {
        case "Play": {
          const plays = verbs.filter((v) => v.tagName === "Play");
          await playClip(abs(verb.textContent.trim()), call, plays.indexOf(verb) + 1, plays.length);
          break;
        }
        case "Say":
          callShow([`“${verb.textContent.trim()}”`]);
          log(`🗣 ${verb.textContent.trim()}`);
          break;
        case "Pause":
          await new Promise((r) => setTimeout(r, 1000 * Number(verb.getAttribute("length") || 1)));
          break;
        case "Gather": {
          call.gather = {
            action: abs(verb.getAttribute("action") || baseUrl),
            numDigits: Number(verb.getAttribute("numDigits") || 0),
            finishOnKey: verb.getAttribute("finishOnKey") ?? "#",
            digits: "", rest: verbs.slice(i + 1), baseUrl,
          };
          screenEl.dataset.gather = "open";
          const plays = Array.from(verb.children).filter((c) => c.tagName === "Play");
          for (const child of Array.from(verb.children)) {
            if (!call.gather || sim.call !== call) return;
            if (child.tagName === "Play") {
              await playClip(abs(child.textContent.trim()), call, plays.indexOf(child) + 1, plays.length);
            }
            if (child.tagName === "Say") callShow([`“${child.textContent.trim()}”`]);
          }
          if (call.gather && sim.call === call) {
            const seconds = Number(verb.getAttribute("timeout") || 5);
            callShow([`Listening for keys (${seconds} s)…`]);
            call.timer = setTimeout(() => gatherTimeout(call), seconds * 1000);
          }
          return; // the rest runs on timeout, or the action's answer replaces it
        }
        case "Redirect":
          await callFetch(abs(verb.textContent.trim()), {});
          return;
        case "Hangup":
        case "Reject":
          hangUp(false);
          return;
        default:
          log(`(ignored <${verb.tagName}>)`);
      }
    }
    if (sim.call === call) hangUp(false); // TwiML that runs out ends the call
  }

  function gatherTimeout(call) {
    if (sim.call !== call || !call.gather) return;
    const { rest, baseUrl } = call.gather;
    call.gather = null;
    delete screenEl.dataset.gather;
    log("… no keys (timeout)");
    transcriptLine("note", "(silence: no keys)");
    runVerbs(rest, baseUrl, call);
  }

  function gatherSubmit(call) {
    const gather = call.gather;
    call.gather = null;
    delete screenEl.dataset.gather;
    clearTimeout(call.timer);
    if (call.stop) { audio.pause(); call.stop(); }
    setEntry("");
    if (!call.keysLine) transcriptLine("keys", "(send)"); // the green key, no digits
    call.keysLine = null;
    return callFetch(gather.action, { Digits: gather.digits });
  }

  function callKey(key) {
    const call = sim.call;
    if (!call || !call.gather) { log(`(key ${key} ignored: not listening)`); return; }
    transcriptKey(call, key);
    if (key === call.gather.finishOnKey) { gatherSubmit(call); return; }
    call.gather.digits += key;
    setEntry(call.gather.digits);
    if (call.gather.numDigits && call.gather.digits.length >= call.gather.numDigits) gatherSubmit(call);
  }

  function placeCall() {
    sim.call = {
      sid: "CA" + hex(16), account: "AC" + hex(16), gather: null, playing: [], stop: null,
      started: Date.now(),
    };
    sim.heard = [];
    transcriptEl.replaceChildren();
    setState("call", "Calling…");
    budgetEl.textContent = "";
    callShow(["Ringing…"]);
    const call = sim.call;
    call.clock = setInterval(() => tick(call), 250);
    callFetch("/ivr/twilio/voice", { CallStatus: "ringing" });
  }

  function hangUp(byUser) {
    const call = sim.call;
    if (call) {
      clearTimeout(call.timer);
      clearInterval(call.clock);
      audio.pause();
      if (call.stop) call.stop();
      sim.call = null;
      log(byUser ? "☎ you hung up" : "☎ call ended");
      transcriptLine("note", byUser ? "(you hung up)" : "(call ended)");
      display.textContent += "\n\nCall ended.";
    }
    delete screenEl.dataset.gather;
    setEntry("");
    setState("end", "Call ended");
  }

  // ---- Keys ----------------------------------------------------------------------
  function key(k) {
    if (sim.state === "call") { callKey(k); return; }
    if (mode() === "sms") { composeEl.value += k; composeBudget(); return; }
    if (sim.state === "end") { reset(); }
    setEntry(sim.entry + k);
  }

  function green() {
    if (mode() === "sms") { smsSend(); return; }
    if (mode() === "call") {
      if (sim.state === "call") { if (sim.call && sim.call.gather) gatherSubmit(sim.call); return; }
      placeCall();
      return;
    }
    if (sim.state === "ussd") { ussdReply(); return; }
    ussdDial();
  }

  function reset() {
    const sms = mode() === "sms";
    transcriptCard.hidden = mode() !== "call";
    display.hidden = sms;
    threadEl.hidden = !sms;
    composeEl.hidden = !sms;
    entryEl.parentElement.hidden = sms;
    sim.session = null;
    sim.inputs = [];
    setEntry("");
    budgetEl.textContent = "";
    setState(sms ? "sms" : "idle", sms ? `SMS ${$("smsto").value.trim()}` : "hotline");
    if (sms) { composeBudget(); composeEl.focus(); return; }
    display.textContent = mode() === "call"
      ? `Ready. Press the green key to call ${$("hotline").value.trim()}.`
      : `Ready. Press the green key to dial ${$("code").value.trim()}.`;
  }

  function red() {
    if (sim.state === "call") { hangUp(true); return; }
    if (mode() === "sms") { composeEl.value = ""; composeBudget(); return; }
    if (sim.state === "ussd") log("☎ you cancelled the session");
    reset();
  }

  $("keypad").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-key]");
    if (button) key(button.dataset.key);
  });
  $("call").addEventListener("click", green);
  $("hangup").addEventListener("click", red);
  $("clear").addEventListener("click", () => {
    if (mode() === "sms") { composeEl.value = [...composeEl.value].slice(0, -1).join(""); composeBudget(); return; }
    if (sim.state !== "call") setEntry(sim.entry.slice(0, -1));
  });
  composeEl.addEventListener("input", composeBudget);
  composeEl.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); smsSend(); }
  });
  document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", () => {
    if (sim.state === "call") hangUp(true);
    reset();
  }));
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement) return;
    if (ev.target instanceof Element && ev.target.closest("#inspector")) return; // its own keys
    if (/^[0-9*#]$/.test(ev.key)) key(ev.key);
    else if (ev.key === "Enter") green();
    else if (ev.key === "Escape") red();
    else if (ev.key === "Backspace") $("clear").click();
  });
  reset();
})();
