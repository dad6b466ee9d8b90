// The keyless ciphers in the browser: for the same key, the same bytes as keyless.cipher.
//
// Images are Uint8Array RGB values, row by row (H x W x 3). Keys are plain objects of typed
// arrays laid out as the Python keys of one image:
//   pe           {codes: Uint8Array(H*W)}, codes 0..47 = 8 * shuffle + inversion bits
//   pe-scramble  {codes, positions: Int32Array(B)}, output block b takes input block positions[b]
//   le, ele, etc {mask: Uint8Array(K*S), perm: Int32Array(K*S), positions: Int32Array(B) | null},
//                K = B (a key per block) or 1, S symbols per block
// Keys are drawn from a byte source `random(n)` (crypto.getRandomValues by default), uniformly
// as keyless draws them, though not from the same stream: only the key decides the bytes.
"use strict";

(() => {
  // RGB, RBG, GRB, GBR, BRG, BGR: the paper's order (itertools.permutations of 0, 1, 2)
  const PERMUTATIONS = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
  const NUM_CODES = 8 * PERMUTATIONS.length;

  // One row per PE code: out[c] = x[row[c]] ^ row[3 + c] (keyless.cipher._pe.ENCRYPT_TABLE)
  const ENCRYPT_TABLE = new Uint8Array(NUM_CODES * 6);
  for (let code = 0; code < NUM_CODES; code++) {
    const src = PERMUTATIONS[code >> 3];
    for (let c = 0; c < 3; c++) {
      ENCRYPT_TABLE[code * 6 + c] = src[c];
      ENCRYPT_TABLE[code * 6 + 3 + c] = ((code >> src[c]) & 1) * 255;
    }
  }

  const DEFAULTS = {
    pe: { shuffle: true, np_mode: "coin", np_per: "component", noise: 0 },
    "pe-scramble": { shuffle: true, np_mode: "coin", np_per: "component", noise: 0, block_size: 8 },
    le: { block_size: 4, per_block: false, scramble: false },
    ele: { block_size: 4, per_block: true, scramble: true },
    etc: { block_size: 4 },
  };

  /** n bytes from the browser's CSPRNG (getRandomValues fills at most 65,536 per call). */
  function csprngBytes(n) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) {
      crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
    }
    return out;
  }

  /** Uniform integers from a byte source, by rejection sampling of 32-bit words. */
  function integers(random) {
    const pools = [];
    let words = new Uint32Array(0);
    let i = 0;
    const next = () => {
      if (i === words.length) {
        const bytes = random(4096);
        pools.push(bytes);
        words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
        i = 0;
      }
      return words[i++];
    };
    return {
      below(m) {
        const limit = 4294967296 - (4294967296 % m);
        for (;;) {
          const w = next();
          if (w < limit) return w % m;
        }
      },
      unit() {  // uniform on (0, 1) with 53 random bits
        return ((next() >>> 5) * 67108864 + (next() >>> 6) + 0.5) / 9007199254740992;
      },
      wipe() {
        for (const bytes of pools) bytes.fill(0);
      },
    };
  }

  function permutation(n, draw) {  // Fisher-Yates
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = draw.below(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  function blockCount(name, m, h, w) {
    if (h % m || w % m) {
      throw new Error(`${name} needs image sides divisible by the block size ${m}, got ${h}x${w}`);
    }
    return (h / m) * (w / m);
  }

  /** Copy block `from` of x into block `to` of out (m x m blocks in raster order). */
  function moveBlock(x, out, w, m, from, to) {
    const across = w / m;
    const [fy, fx] = [Math.floor(from / across), from % across];
    const [ty, tx] = [Math.floor(to / across), to % across];
    for (let r = 0; r < m; r++) {
      const src = ((fy * m + r) * w + fx * m) * 3;
      out.set(x.subarray(src, src + m * 3), ((ty * m + r) * w + tx * m) * 3);
    }
  }

  function scrambleBlocks(x, h, w, m, positions) {
    const out = new Uint8Array(x.length);
    for (let b = 0; b < positions.length; b++) moveBlock(x, out, w, m, positions[b], b);
    return out;
  }

  // ---- PE and PE with a block scramble --------------------------------------------------

  function pixelKeygen(o, h, w, draw) {
    const n = h * w;
    const codes = new Uint8Array(n);
    for (let p = 0; p < n; p++) codes[p] = draw.below(NUM_CODES);
    let balanced = null;
    if (o.np_mode === "balanced") {  // exactly half of the 3n values inverted
      const order = permutation(3 * n, draw);
      const bits = new Uint8Array(3 * n);
      for (let i = 0; i < Math.floor((3 * n) / 2); i++) bits[order[i]] = 1;
      balanced = new Uint8Array(n);
      for (let p = 0; p < n; p++) balanced[p] = bits[3 * p] | (bits[3 * p + 1] << 1) | (bits[3 * p + 2] << 2);
    }
    if (!(o.shuffle && o.np_per === "component" && balanced === null)) {
      for (let p = 0; p < n; p++) {  // the variant's key set, as PixelCipher._restrict
        const perm = o.shuffle ? codes[p] >> 3 : 0;
        let bits = balanced === null ? codes[p] & 7 : balanced[p];
        if (o.np_per === "pixel") bits = (bits & 1) * 7;
        codes[p] = perm * 8 + bits;
      }
    }
    return { codes };
  }

  function pixelEncrypt(x, codes) {
    const out = new Uint8Array(x.length);
    for (let p = 0, o = 0; p < codes.length; p++, o += 3) {
      const k = codes[p] * 6;
      out[o] = x[o + ENCRYPT_TABLE[k]] ^ ENCRYPT_TABLE[k + 3];
      out[o + 1] = x[o + ENCRYPT_TABLE[k + 1]] ^ ENCRYPT_TABLE[k + 4];
      out[o + 2] = x[o + ENCRYPT_TABLE[k + 2]] ^ ENCRYPT_TABLE[k + 5];
    }
    return out;
  }

  /** Gaussian noise of standard deviation `noise` on every value, rounded and clipped. */
  function addNoise(x, noise, draw) {
    const out = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i += 2) {  // Box-Muller: two normal values per draw
      const r = noise * Math.sqrt(-2 * Math.log(draw.unit()));
      const t = 2 * Math.PI * draw.unit();
      out[i] = Math.min(255, Math.max(0, Math.round(x[i] + r * Math.cos(t))));
      if (i + 1 < x.length) out[i + 1] = Math.min(255, Math.max(0, Math.round(x[i + 1] + r * Math.sin(t))));
    }
    return out;
  }

  // ---- Block-wise LE, ELE and EtC -------------------------------------------------------

  /** The 48 byte permutations of an m x m block: 8 rotations/flips x 6 colour orders, in the
   * order of keyless.cipher._block._dihedral_colour_perms (numpy's rot90, then [:, ::-1]). */
  function dihedralColourPerms(m) {
    const spatial = [];
    let at = (i, j) => [i, j];
    for (let k = 0; k < 4; k++) {
      spatial.push(at);
      const previous = at;
      at = (i, j) => previous(j, m - 1 - i);  // rot90: R[i][j] = A[j][m-1-i]
    }
    for (let k = 0; k < 4; k++) {
      const rotated = spatial[k];
      spatial.push((i, j) => rotated(i, m - 1 - j));
    }
    const s = 3 * m * m;
    const table = [];
    for (const place of spatial) {
      for (const order of PERMUTATIONS) {
        const row = new Int32Array(s);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < m; j++) {
            const [si, sj] = place(i, j);
            for (let c = 0; c < 3; c++) row[(i * m + j) * 3 + c] = (si * m + sj) * 3 + order[c];
          }
        }
        table.push(row);
      }
    }
    return table;
  }

  function blockKeygen(name, o, h, w, draw) {
    const m = o.block_size;
    const blocks = blockCount(name, m, h, w);
    if (name === "etc") {
      const s = 3 * m * m;
      const table = dihedralColourPerms(m);
      const mask = new Uint8Array(blocks * s);
      const perm = new Int32Array(blocks * s);
      for (let b = 0; b < blocks; b++) perm.set(table[draw.below(table.length)], b * s);
      for (let b = 0; b < blocks; b++) mask.fill(draw.below(2) * 255, b * s, (b + 1) * s);
      return { mask, perm, positions: permutation(blocks, draw) };
    }
    const s = 6 * m * m;
    const keys = o.per_block ? blocks : 1;
    const mask = new Uint8Array(keys * s);
    for (let i = 0; i < mask.length; i++) mask[i] = draw.below(2) * 15;
    const perm = new Int32Array(keys * s);
    for (let k = 0; k < keys; k++) perm.set(permutation(s, draw), k * s);
    return { mask, perm, positions: o.scramble ? permutation(blocks, draw) : null };
  }

  function blockEncrypt(name, o, x, h, w, key) {
    const m = o.block_size;
    const nibbles = name !== "etc";
    const blocks = blockCount(name, m, h, w);
    const values = 3 * m * m;
    const s = nibbles ? 2 * values : values;
    const keys = key.mask.length / s;
    if (key.perm.length !== key.mask.length || (keys !== 1 && keys !== blocks)) {
      throw new Error(`${name} key of ${key.mask.length} symbols does not fit ${blocks} blocks of ${s}`);
    }
    const across = w / m;
    const sym = new Uint8Array(s);
    const out = new Uint8Array(x.length);
    const goes = new Int32Array(blocks);  // where each block goes: output b takes positions[b]
    for (let b = 0; b < blocks; b++) goes[key.positions ? key.positions[b] : b] = b;
    for (let b = 0; b < blocks; b++) {
      const k = keys === 1 ? 0 : b;
      const by = Math.floor(b / across);
      const bx = b % across;
      let v = 0;  // the block's values row by row, as to_symbols, masked
      for (let r = 0; r < m; r++) {
        const start = ((by * m + r) * w + bx * m) * 3;
        for (let i = start; i < start + m * 3; i++, v++) {
          if (nibbles) {
            sym[2 * v] = (x[i] >> 4) ^ key.mask[k * s + 2 * v];
            sym[2 * v + 1] = (x[i] & 15) ^ key.mask[k * s + 2 * v + 1];
          } else {
            sym[v] = x[i] ^ key.mask[k * s + v];
          }
        }
      }
      const ty = Math.floor(goes[b] / across);
      const tx = goes[b] % across;
      v = 0;
      for (let r = 0; r < m; r++) {
        const start = ((ty * m + r) * w + tx * m) * 3;
        for (let i = start; i < start + m * 3; i++, v++) {
          out[i] = nibbles
            ? (sym[key.perm[k * s + 2 * v]] << 4) | sym[key.perm[k * s + 2 * v + 1]]
            : sym[key.perm[k * s + v]];
        }
      }
    }
    return out;
  }

  // ---- The cipher a service names ---------------------------------------------------------

  /**
   * The cipher of a service's `GET /v1/model` answer: its settings, {name, ...options}, as
   * keyless's Cipher.settings() gives them; throws an Error whose message says why when this
   * page cannot make its ciphertexts.
   */
  function create(settings) {
    const { name, ...options } = settings;
    if (!(name in DEFAULTS)) {
      throw new Error(`the served cipher ${name} is not one this page makes (${Object.keys(DEFAULTS).join(", ")})`);
    }
    const unknown = Object.keys(options).filter((k) => !(k in DEFAULTS[name]));
    if (unknown.length) throw new Error(`cipher ${name} has options this page does not know: ${unknown.join(", ")}`);
    const o = { ...DEFAULTS[name], ...options };
    const pixel = name === "pe" || name === "pe-scramble";
    return {
      name,
      options: o,
      /** A fresh key for one h x w image, from `random` (default: the browser's CSPRNG). */
      keygen(h, w, random = csprngBytes) {
        const draw = integers(random);
        try {
          if (!pixel) return blockKeygen(name, o, h, w, draw);
          const key = pixelKeygen(o, h, w, draw);
          if (name === "pe-scramble") key.positions = permutation(blockCount(name, o.block_size, h, w), draw);
          return key;
        } finally {
          draw.wipe();
        }
      },
      /** The owner's noise (pe, pe-scramble with noise above 0), else the image itself. */
      obscure(x, random = csprngBytes) {
        if (!o.noise) return x;
        const draw = integers(random);
        try {
          return addNoise(x, o.noise, draw);
        } finally {
          draw.wipe();
        }
      },
      /** The h x w RGB image x encrypted under key (a new array). */
      encrypt(x, h, w, key) {
        if (x.length !== h * w * 3) throw new Error(`expected ${h}x${w}x3 values, got ${x.length}`);
        if (!pixel) return blockEncrypt(name, o, x, h, w, key);
        if (key.codes.length !== h * w) throw new Error(`a key of ${key.codes.length} pixels does not fit ${h}x${w}`);
        const y = pixelEncrypt(x, key.codes);
        if (name === "pe") return y;
        blockCount(name, o.block_size, h, w);
        return scrambleBlocks(y, h, w, o.block_size, key.positions);
      },
      /** Zero every array of a key: nothing of it stays in memory. */
      wipe(key) {
        for (const part of Object.values(key)) if (part) part.fill(0);
      },
    };
  }

  globalThis.keylessCipher = Object.freeze({ create, csprngBytes, ciphers: Object.keys(DEFAULTS) });
})();
