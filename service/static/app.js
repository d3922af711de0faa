// The try-it page: plain JavaScript, no build step, no third-party code, and it
// talks only to the server that served it (the page's CSP forbids anything else).
// Crops go to /predict/batch in chunks; plates and photos go one by one to /read-plate.
// By default the picture itself says which it is (kindOf); the user can pick one for all.
"use strict";

(() => {
  // Several files per request keeps the round trips down; small enough that one
  // chunk never nears the server's batch limits (64 files, 5 MiB each by default).
  const BATCH_SIZE = 16;
  // Bars shown up front; the rest of the 12 classes sit behind a <details>.
  const TOP_BARS = 3;
  // A character crop is small and about square or upright: the samples are about 100x122, and
  // 99 % of the training crops are under 300 px a side and under 1.3:1. A plate is wider than
  // that, a photo bigger; either goes to /read-plate.
  const CROP_MAX_SIDE = 300;
  const CROP_MAX_ASPECT = 1.3;
  const DROP_TITLES = { auto: "Drop pictures here", crops: "Drop character crops here", plate: "Drop plate photos here" };

  const input = document.getElementById("file-input");
  const zone = document.getElementById("drop-zone");
  const results = document.getElementById("results");
  const statusLine = document.getElementById("status");
  const clearButton = document.getElementById("clear");
  const versionLabel = document.getElementById("model-version");
  const keyInput = document.getElementById("api-key");
  const objectUrls = [];

  // The API key, for a service started with LPR_API_KEYS: kept for this tab only.
  keyInput.value = sessionStorage.getItem("lpr-api-key") || "";
  keyInput.addEventListener("change", () => sessionStorage.setItem("lpr-api-key", keyInput.value.trim()));

  /** The key header when a key is given; the page works without one where the service is open. */
  function authHeaders() {
    const key = keyInput.value.trim();
    return key ? { "X-API-Key": key } : {};
  }

  /** Build an element: attrs are attributes except `class` and `text`; children are nodes or strings. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  /** Replace a node's children, skipping the null/undefined left by optional parts. */
  function fill(node, ...children) {
    node.replaceChildren(...children.filter((child) => child !== null && child !== undefined));
  }

  const percent = (p) => `${(p * 100).toFixed(1)} %`;

  class ApiError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  /** POST a form; resolve to the JSON body, or throw the service's {"error":{code,message}}. */
  async function post(url, form) {
    let response;
    try {
      response = await fetch(url, { method: "POST", body: form, headers: authHeaders() });
    } catch (err) {
      throw new ApiError("network", `the server could not be reached (${err.message})`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // A proxy's HTML error page, say; reported by status below.
    }
    if (!response.ok) {
      const error = body && body.error;
      throw error
        ? new ApiError(error.code, error.message)
        : new ApiError(`http_${response.status}`, `the server answered HTTP ${response.status}`);
    }
    if (body === null) throw new ApiError("bad_answer", "the server's answer was not JSON");
    return body;
  }

  function showVersion(modelVersion) {
    if (modelVersion) versionLabel.textContent = modelVersion;
  }

  async function loadModelInfo() {
    try {
      // /ready is open (a probe), so the version shows before any key is entered.
      const response = await fetch("/ready");
      const body = await response.json();
      if (response.ok) showVersion(body.model_version);
      else versionLabel.textContent = `not ready (${body.detail || response.status})`;
    } catch {
      versionLabel.textContent = "unavailable";
    }
  }

  function unknownBadge() {
    return el("span", {
      class: "badge badge-unknown",
      "data-testid": "result-unknown",
      title: "Low confidence: this may not be one of the twelve plate characters",
      text: "unknown",
    });
  }

  /** The picture's size as the browser reads it (upright), or null if it cannot read it. */
  function imageSize(file) {
    return new Promise((resolve) => {
      const url = URL.createObjectURL(file);
      const image = new Image();
      const done = (size) => {
        URL.revokeObjectURL(url);
        resolve(size);
      };
      image.addEventListener("load", () => done({ width: image.naturalWidth, height: image.naturalHeight }));
      image.addEventListener("error", () => done(null));
      image.src = url;
    });
  }

  /** "plate" for a plate or photo, "crop" for one character; a file the browser cannot read goes
   * to /predict/batch, whose answer names what is wrong with it. */
  async function kindOf(file) {
    const size = await imageSize(file);
    if (!size) return "crop";
    const { width, height } = size;
    return Math.max(width, height) > CROP_MAX_SIDE || width > height * CROP_MAX_ASPECT ? "plate" : "crop";
  }

  /** A card with the upload's preview, filled in when the answer comes; `chosen`: the page chose how
   * to read it, so the card says so. */
  function pendingCard(file, kind, chosen) {
    const url = URL.createObjectURL(file);
    objectUrls.push(url);
    const image = el("img", { src: url, alt: `Uploaded image ${file.name}`, "data-testid": "result-image" });
    const stage = el("div", { class: "stage" }, image);
    image.addEventListener("error", () => stage.classList.add("no-preview"), { once: true });
    const card = el(
      "article",
      {
        class: `card card-${kind}`,
        "data-testid": kind === "plate" ? "plate-card" : "result-card",
        "data-state": "pending",
        "data-filename": file.name,
        "aria-busy": "true",
      },
      el(
        "figure",
        {},
        stage,
        el(
          "figcaption",
          { class: "filename", text: file.name },
          chosen
            ? el("span", {
                class: "read-as",
                "data-testid": "read-as",
                text: kind === "plate" ? "read as a plate or photo" : "read as one character",
              })
            : null,
        ),
      ),
      el("div", { class: "card-body" }, el("p", { class: "pending", text: "Reading…" })),
    );
    return card;
  }

  function finish(card, state) {
    card.dataset.state = state;
    card.removeAttribute("aria-busy");
    if (state === "error") card.classList.add("is-error");
  }

  function showError(card, error) {
    fill(
      card.querySelector(".card-body"),
      el(
        "p",
        { class: "error", "data-testid": "result-error" },
        error.message || String(error),
        el("code", { class: "error-code", text: error.code || "error" }),
      ),
    );
    finish(card, "error");
  }

  function bars(probabilities, label) {
    return el(
      "ol",
      { class: "bars", "data-testid": "result-bars", "aria-label": label },
      ...probabilities.map((p) =>
        el(
          "li",
          { class: "bar", "data-label": p.label },
          el("span", { class: "bar-name" }, el("span", { lang: "ne", text: p.devanagari }), el("small", { text: p.label })),
          el("span", { class: "bar-track", "aria-hidden": "true" }, barFill(p.probability)),
          el("span", { class: "bar-value", text: percent(p.probability) }),
        ),
      ),
    );
  }

  function barFill(probability) {
    const fill = el("span", { class: "bar-fill" });
    fill.style.width = `${Math.max(0, Math.min(1, probability)) * 100}%`;
    return fill;
  }

  function showCrop(card, result) {
    if (result.status !== "ok") {
      showError(card, result.error || { code: "error", message: "not classified" });
      return;
    }
    const probabilities = result.probabilities || [];
    const body = card.querySelector(".card-body");
    fill(
      body,
      el("p", { class: "glyph", lang: "ne", "data-testid": "result-label", text: result.devanagari }),
      el(
        "p",
        { class: "facts" },
        el("span", {}, "class ", el("code", { "data-testid": "result-ascii", text: result.label })),
        el("span", {}, "confidence ", el("strong", { "data-testid": "result-confidence", text: percent(result.confidence) })),
        result.unknown === true ? unknownBadge() : null,
      ),
      bars(probabilities.slice(0, TOP_BARS), "Most probable classes"),
      probabilities.length > TOP_BARS
        ? el(
            "details",
            { class: "all-classes" },
            el("summary", { text: `All ${probabilities.length} classes` }),
            bars(probabilities, "Every class"),
          )
        : null,
    );
    card.dataset.label = result.label;
    if (result.unknown === true) card.classList.add("is-unknown");
    finish(card, "done");
  }

  /** A character's candidates as one line, for its tooltip. */
  function candidatesText(ch) {
    return (ch.candidates || []).map((c) => `${c.devanagari} ${percent(c.probability)}`).join(" · ");
  }

  function showPlate(card, answer) {
    const stage = card.querySelector(".stage");
    const { width, height } = answer.image || {};
    const rows = answer.rows || [];
    // Boxes are placed in percent of the upright image, so they follow the picture at any size.
    const place = (node, box) => {
      node.style.left = `${(box.x / width) * 100}%`;
      node.style.top = `${(box.y / height) * 100}%`;
      node.style.width = `${(box.width / width) * 100}%`;
      node.style.height = `${(box.height / height) * 100}%`;
    };
    if (width > 0 && height > 0) {
      // Each plate found in a photo (a tight crop is one plate filling the picture), with its reading.
      for (const plate of answer.plates || []) {
        const frame = el(
          "span",
          {
            class: `plate-frame ${plate.confident ? "is-confident" : "is-doubtful"}`,
            "data-testid": "plate-found",
            "data-confident": plate.confident ? "true" : "false",
            "aria-hidden": "true",
          },
          el("span", { class: "plate-frame-tag", lang: "ne", text: plate.text || "?" }),
        );
        place(frame, plate.box);
        stage.append(frame);
      }
      for (const row of rows) {
        for (const ch of row.characters || []) {
          if (!ch.box) continue;
          const box = el(
            "span",
            { class: `box${ch.unknown ? " is-unknown" : ""}`, "data-testid": "plate-box", "aria-hidden": "true" },
            el("span", { class: "box-tag", lang: "ne", text: ch.devanagari }),
          );
          place(box, ch.box);
          stage.append(box);
        }
      }
    }
    const read = Boolean(answer.text);
    // The plate-level verdict a parking system keys on: stored as read only when confident.
    const verdict = read
      ? el("p", {
          class: `plate-verdict ${answer.confident ? "is-confident" : "is-doubtful"}`,
          "data-testid": "plate-confident",
          "data-confident": answer.confident ? "true" : "false",
          text: answer.confident
            ? "Confident: every character read, and the plate fits the format"
            : "Doubtful: check this plate (a ? or low-confidence character, a letter named by the letter model, or no plate format)",
        })
      : null;
    const readings = (answer.readings || []).slice(1);
    const others = (answer.plates || []).slice(1);
    fill(
      card.querySelector(".card-body"),
      el("p", { class: `plate-text${read ? "" : " is-empty"}`, lang: read ? "ne" : null, "data-testid": "plate-text", text: answer.text || "nothing read" }),
      verdict,
      answer.reason ? el("p", { class: "reason", "data-testid": "plate-reason", text: answer.reason }) : null,
      others.length
        ? el(
            "p",
            { class: "other-plates", "data-testid": "plate-others" },
            `${others.length} more plate${others.length === 1 ? "" : "s"} in the photo: `,
            ...others.map((p) => el("span", { lang: "ne", text: `${p.text || "?"}${p.confident ? "" : " (doubtful)"} ` })),
          )
        : null,
      readings.length
        ? el(
            "details",
            { class: "readings", "data-testid": "plate-readings" },
            el("summary", { text: `${readings.length} other reading${readings.length === 1 ? "" : "s"}` }),
            el(
              "ol",
              {},
              ...readings.map((r) =>
                el("li", {}, el("span", { lang: "ne", text: r.text }), ` ${percent(r.score)}${r.matches_format ? "" : " (no plate format)"}`),
              ),
            ),
          )
        : null,
      ...rows.map((row, index) =>
        el(
          "section",
          { class: "plate-row", "data-testid": "plate-row", "aria-label": `Row ${index + 1}` },
          el("h3", {}, `Row ${index + 1}: `, el("span", { lang: "ne", text: row.text })),
          el(
            "ol",
            { class: "chars" },
            ...(row.characters || []).map((ch) =>
              el(
                "li",
                {
                  class: `char${ch.unknown ? " is-unknown" : ""}`,
                  "data-testid": "plate-char",
                  "data-label": ch.label,
                  "data-reason": ch.reason || null,
                  // Candidates on hover (title) and, for touch, in the details below.
                  title: candidatesText(ch),
                  tabindex: "0",
                },
                el("span", { class: "char-glyph", lang: "ne", text: ch.devanagari }),
                el("span", { class: "char-confidence", text: percent(ch.confidence) }),
                ch.unknown ? unknownBadge() : null,
                ch.reason ? el("span", { class: "char-reason", text: ch.reason.replace("_", " ") }) : null,
                el(
                  "details",
                  { class: "candidates", "data-testid": "plate-candidates" },
                  el("summary", { text: "candidates" }),
                  el(
                    "ol",
                    {},
                    ...(ch.candidates || []).map((c) => el("li", { lang: "ne" }, `${c.devanagari} ${percent(c.probability)}`)),
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
    );
    if (!read) card.classList.add("is-unknown");
    finish(card, "done");
  }

  async function classifyCrops(files, cards) {
    for (let start = 0; start < files.length; start += BATCH_SIZE) {
      const chunk = files.slice(start, start + BATCH_SIZE);
      const form = new FormData();
      for (const file of chunk) form.append("files", file, file.name);
      try {
        const answer = await post("/predict/batch", form);
        showVersion(answer.model_version);
        for (const result of answer.results) showCrop(cards[start + result.index], result);
      } catch (err) {
        chunk.forEach((_, i) => showError(cards[start + i], err));
      }
    }
  }

  async function readPlates(files, cards) {
    for (const [i, file] of files.entries()) {
      const form = new FormData();
      form.append("file", file, file.name);
      try {
        const answer = await post("/read-plate", form);
        showVersion(answer.model_version);
        showPlate(cards[i], answer);
      } catch (err) {
        showError(cards[i], err);
      }
    }
  }

  async function handle(fileList) {
    const files = Array.from(fileList || []);
    if (files.length === 0) return;
    const mode = document.querySelector('input[name="mode"]:checked').value;
    const kinds = mode === "auto" ? await Promise.all(files.map(kindOf)) : files.map(() => (mode === "plate" ? "plate" : "crop"));
    const cards = files.map((file, i) => pendingCard(file, kinds[i], mode === "auto"));
    results.prepend(...cards); // newest uploads first, each group in upload order
    clearButton.disabled = false;
    statusLine.textContent = `Reading ${files.length} image${files.length === 1 ? "" : "s"}…`;
    const of = (kind, list) => list.filter((_, i) => kinds[i] === kind);
    await classifyCrops(of("crop", files), of("crop", cards));
    await readPlates(of("plate", files), of("plate", cards));
    const failed = cards.filter((card) => card.dataset.state === "error").length;
    statusLine.textContent = `${files.length - failed} of ${files.length} read${failed ? `, ${failed} failed` : ""}.`;
  }

  const form = document.getElementById("upload-form");
  const dropTitle = document.getElementById("drop-title");
  // Nothing is ever submitted the classic way; Enter on a control must not reload the page.
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("change", (event) => {
    if (event.target.name !== "mode") return;
    dropTitle.textContent = DROP_TITLES[event.target.value];
  });

  input.addEventListener("change", () => {
    handle(input.files);
    input.value = ""; // choosing the same file again fires another change
  });
  // On a phone, "take a photo" opens the rear camera; the frame is read as a whole plate photo.
  const camera = document.getElementById("camera-input");
  camera.addEventListener("change", () => {
    document.getElementById("mode-plate").checked = true;
    dropTitle.textContent = DROP_TITLES.plate;
    handle(camera.files);
    camera.value = "";
  });

  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("is-over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("is-over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("is-over");
    handle(event.dataTransfer.files);
  });
  // A file dropped just beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  // Pasting a screenshot works too.
  document.addEventListener("paste", (event) => {
    if (event.clipboardData && event.clipboardData.files.length) handle(event.clipboardData.files);
  });

  clearButton.addEventListener("click", () => {
    results.replaceChildren();
    objectUrls.splice(0).forEach((url) => URL.revokeObjectURL(url));
    statusLine.textContent = "";
    clearButton.disabled = true;
    input.focus();
  });

  loadModelInfo();
})();
