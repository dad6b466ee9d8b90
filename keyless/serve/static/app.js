// The page's client: fit each photo to the model, encrypt it here, send only the ciphertext.
"use strict";

(() => {
  // The owner's commands refuse larger images (keyless.data.DEFAULT_MAX_PIXELS).
  const MAX_PIXELS = 50_000_000;

  const $ = (id) => document.getElementById(id);
  const results = $("results");
  const status = $("status");
  let info = null; // GET v1/model
  let cipher = null; // the served cipher, or null
  let cipherProblem = ""; // why this page cannot make the served cipher's ciphertexts
  let queue = Promise.resolve();

  /** An error shown as the photo's one-line message. */
  class Refusal extends Error {}

  const oneLine = (text) => String(text).replace(/\s+/g, " ").trim();
  const percent = (value) => (value == null ? "not measured" : `${(100 * value).toFixed(1)} %`);

  /** Python's round(): halves to even, so the fitted size is the one keyless computes. */
  function roundHalfEven(x) {
    const f = Math.floor(x);
    const d = x - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function describeModel() {
    const model = $("model");
    try {
      const response = await fetch("v1/model", { cache: "no-store" });
      if (!response.ok) throw new Error(`GET v1/model answered ${response.status}`);
      info = await response.json();
    } catch (error) {
      model.textContent = `Cannot read the served model: ${oneLine(error.message)}.`;
      model.classList.add("bad");
      return;
    }
    try {
      cipher = keylessCipher.create(info.cipher);
    } catch (error) {
      cipherProblem = oneLine(error.message);
    }
    const [h, w] = info.input_size;
    const how = info.tta ? "with test-time augmentation" : "one forward pass per photo";
    const plainAccuracy = percent(info.accepts.plain_images);
    const trained =
      info.keys === "plain" ? "plain images" : `${info.cipher.name} ciphertexts under ${info.keys} keys`;
    let text =
      `Model ${info.name} (${info.model}, ${info.classes.length} classes) takes ${w}x${h} ` +
      `photos, trained on ${trained}. `;
    if ("fresh_key_ciphertexts" in info.accepts) {
      const fresh = percent(info.accepts.fresh_key_ciphertexts);
      text += `Test accuracy ${fresh} on fresh-key ciphertexts, ${plainAccuracy} on plain images (${how}).`;
    } else {
      text += `It classifies plain images only (${plainAccuracy}, ${how}): fresh-key ciphertexts would come back near chance.`;
    }
    if (cipherProblem) text += ` This page cannot encrypt for it: ${cipherProblem}.`;
    model.textContent = text;
    if (encryptionProblem()) model.classList.add("bad");
  }

  /** Why photos cannot go encrypted to this model, or "" when they can. */
  function encryptionProblem() {
    if (!("fresh_key_ciphertexts" in info.accepts)) {
      return `the served model (${info.keys} keys in training) does not classify fresh-key ciphertexts; tick "send plain" to send the photo unencrypted`;
    }
    return cipherProblem;
  }

  /** The image's width and height, read without decoding its pixels. */
  function dimensions(file) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file);
      const image = new Image();
      image.onload = () => {
        URL.revokeObjectURL(url);
        resolve([image.naturalWidth, image.naturalHeight]);
      };
      image.onerror = () => {
        URL.revokeObjectURL(url);
        reject(new Refusal("not an image this browser can read"));
      };
      image.src = url;
    });
  }

  /** Lanczos-3 (sinc(x) sinc(x / 3) for |x| < 3), the filter keyless.data.fit_image uses. */
  function lanczos(x) {
    if (x === 0) return 1;
    if (x <= -3 || x >= 3) return 0;
    const a = Math.PI * x;
    return (3 * Math.sin(a) * Math.sin(a / 3)) / (a * a);
  }

  /**
   * Per output index from `first` (count of them) of a side scaled from `size` to `scaled`: the
   * first input index and the normalised weights. The kernel is widened by the reduction factor
   * when shrinking (antialiasing), as Pillow's resampling does.
   */
  function weights(size, scaled, first, count) {
    const scale = size / scaled;
    const stretch = Math.max(scale, 1);
    const support = 3 * stretch;
    const taps = [];
    for (let i = first; i < first + count; i++) {
      const centre = (i + 0.5) * scale;
      const start = Math.max(0, Math.floor(centre - support + 0.5));
      const end = Math.min(size, Math.floor(centre + support + 0.5));
      const w = [];
      for (let x = start; x < end; x++) w.push(lanczos((x - centre + 0.5) / stretch));
      const total = w.reduce((a, b) => a + b, 0);
      taps.push({ start, w: w.map((v) => v / total) });
    }
    return taps;
  }

  const byte = (v) => Math.min(255, Math.max(0, Math.round(v)));

  /**
   * The h x w window at (top, left) of the RGB image `rgb` (height x width) scaled to
   * scaledH x scaledW: rows first, then columns, each pass rounded to bytes, as Pillow does.
   */
  function resample(rgb, height, width, scaledH, scaledW, top, left, h, w) {
    const across = weights(width, scaledW, left, w);
    const rows = new Uint8Array(height * w * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < w; x++) {
        const { start, w: k } = across[x];
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let j = 0; j < k.length; j++) sum += k[j] * rgb[(y * width + start + j) * 3 + c];
          rows[(y * w + x) * 3 + c] = byte(sum);
        }
      }
    }
    const down = weights(height, scaledH, top, h);
    const out = new Uint8Array(h * w * 3);
    for (let y = 0; y < h; y++) {
      const { start, w: k } = down[y];
      for (let i = 0; i < w * 3; i++) {
        let sum = 0;
        for (let j = 0; j < k.length; j++) sum += k[j] * rows[(start + j) * w * 3 + i];
        out[y * w * 3 + i] = byte(sum);
      }
    }
    return out;
  }

  /**
   * The photo as h x w RGB values, as keyless.data.fit_image makes them: scaled (Lanczos) so
   * that it covers h x w, then centre-cropped; a photo of that size is taken value for value.
   */
  async function fit(file, h, w) {
    const [width, height] = await dimensions(file);
    if (width * height > MAX_PIXELS) {
      throw new Refusal(`${width}x${height} = ${width * height} pixels exceeds the page's limit of ${MAX_PIXELS}`);
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    } catch {
      throw new Refusal("not an image this browser can decode");
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgba = context.getImageData(0, 0, width, height).data;
    const rgb = new Uint8Array(width * height * 3);
    for (let p = 0; p < width * height; p++) {
      if (rgba[4 * p + 3] !== 255) {
        throw new Refusal("has transparent pixels; keyless encrypts RGB only, so flatten the photo first");
      }
      rgb.set(rgba.subarray(4 * p, 4 * p + 3), 3 * p);
    }
    if (width === w && height === h) return rgb;
    const scale = Math.max(h / height, w / width);
    const scaledW = roundHalfEven(width * scale);
    const scaledH = roundHalfEven(height * scale);
    const top = Math.floor((scaledH - h) / 2);
    const left = Math.floor((scaledW - w) / 2);
    return resample(rgb, height, width, scaledH, scaledW, top, left, h, w);
  }

  function picture(rgb, h, w, caption) {
    const canvas = element("canvas");
    canvas.width = w;
    canvas.height = h;
    const image = new ImageData(w, h);
    for (let p = 0; p < h * w; p++) {
      image.data.set(rgb.subarray(3 * p, 3 * p + 3), 4 * p);
      image.data[4 * p + 3] = 255;
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
    const figure = element("figure");
    figure.append(canvas, element("figcaption", "", caption));
    return figure;
  }

  async function classify(values, h, w, topK) {
    let response;
    try {
      response = await fetch(`v1/classify?top_k=${topK}`, {
        method: "POST",
        headers: { "Content-Type": "application/octet-stream", "X-Image-Shape": `1,${h},${w},3` },
        body: values,
      });
    } catch (error) {
      throw new Refusal(`cannot reach the service (${error.message})`);
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = answer && answer.detail ? answer.detail : response.statusText;
      throw new Refusal(`the service refused it (${response.status}): ${detail}`);
    }
    return answer.results[0];
  }

  function showResult(card, result) {
    const answer = element("p", "answer");
    answer.append(element("strong", "", result.class_name));
    card.append(answer);
    const list = element("ol", "topk");
    for (const entry of result.top_k) {
      const item = element("li");
      const bar = element("progress");
      bar.max = 1;
      bar.value = entry.probability;
      item.append(element("span", "", entry.class_name), bar, element("span", "p", entry.probability.toFixed(3)));
      list.append(item);
    }
    card.append(list);
  }

  /** Fit, encrypt (or not), send and show one photo; every failure is one line on its card. */
  async function process(file, plain, topK) {
    const card = element("article", "card");
    card.dataset.status = "working";
    card.append(element("h2", "", file.name));
    card.querySelector("h2").title = file.name;
    results.append(card);
    try {
      if (!plain && encryptionProblem()) throw new Refusal(encryptionProblem());
      const [h, w] = info.input_size;
      const rgb = await fit(file, h, w);
      let sent = rgb;
      if (!plain) {
        const key = cipher.keygen(h, w);
        sent = cipher.encrypt(cipher.obscure(rgb), h, w, key);
        cipher.wipe(key); // the key is never sent nor kept
      }
      const pair = element("div", "pair");
      pair.append(picture(rgb, h, w, "plain (stays here)"));
      pair.append(picture(sent, h, w, plain ? "plain (sent)" : "encrypted (sent)"));
      card.append(pair);
      card.dataset.sent = plain ? "plain" : "encrypted";
      const result = await classify(sent, h, w, topK);
      showResult(card, result);
      card.dataset.label = result.label;
      card.dataset.status = "done";
    } catch (error) {
      if (!(error instanceof Refusal)) console.error(error);
      card.querySelector(".pair")?.remove(); // nothing half-done: the message alone
      card.append(element("p", "message", oneLine(error.message)));
      card.dataset.status = "error";
    }
  }

  function enqueue(files) {
    const list = Array.from(files);
    if (!list.length) return;
    queue = queue.then(async () => {
      if (!info) {
        status.textContent = "The served model could not be read; reload the page.";
        return;
      }
      const plain = $("plain").checked;
      const topK = Math.max(1, Math.min(info.classes.length, Number($("topk").value) || 3));
      for (const [i, file] of list.entries()) {
        status.textContent = `Classifying ${i + 1} of ${list.length}\u2026`;
        await process(file, plain, topK);
      }
      status.textContent = `${list.length} photo${list.length === 1 ? "" : "s"} processed.`;
    });
  }

  $("files").addEventListener("change", (event) => {
    enqueue(event.target.files);
    event.target.value = ""; // choosing the same photo again classifies it again
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    enqueue(event.dataTransfer.files);
  });
  queue = describeModel();
})();
