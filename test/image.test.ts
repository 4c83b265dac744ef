import { mulberry32 } from '../src/builders.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, crc32, deflateRawSync, deflateSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { decodeImage, imageToInput, MAX_IMAGE_PIXELS, type RgbaImage } from '../src/image.js';
import { ImageDecodeError, InputError } from '../src/errors.js';
import type { Preprocess } from '../src/desc.js';

const { PNG } = pngjs;

function sample(name: string): Uint8Array {
  return readFileSync(fileURLToPath(new URL(`../samples/${name}`, import.meta.url)));
}

const rng = mulberry32;

function randomRgba(w: number, h: number, seed: number): RgbaImage {
  const r = rng(seed);
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
  return { data, width: w, height: h };
}

// ---- hand-built PNG files -----------------------------------------------------------

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td) >>> 0);
  return Buffer.concat([len, td, crc]);
}

function ihdr(width: number, height: number, bitDepth: number, colorType: number, interlace = 0): Buffer {
  const h = Buffer.alloc(13);
  h.writeUInt32BE(width, 0);
  h.writeUInt32BE(height, 4);
  h[8] = bitDepth;
  h[9] = colorType;
  h[12] = interlace;
  return chunk('IHDR', h);
}

/** A non-interlaced PNG from unfiltered scanlines (each given without its filter byte). */
function buildPng(
  width: number,
  height: number,
  bitDepth: number,
  colorType: number,
  rows: number[][],
  extra: Buffer[] = [],
): Uint8Array {
  const raw = Buffer.concat(rows.map((row) => Buffer.from([0, ...row])));
  return Buffer.concat([
    PNG_SIG,
    ihdr(width, height, bitDepth, colorType),
    ...extra,
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function px(img: RgbaImage, x: number, y: number): number[] {
  const o = (y * img.width + x) * 4;
  return Array.from(img.data.subarray(o, o + 4));
}

const to8 = (v: number, depth: number): number => Math.floor((v * 255) / (2 ** depth - 1) + 0.5);

// ---- decoding ---------------------------------------------------------------------

describe('decodeImage: PNG', () => {
  const W = 7;
  const H = 5;
  const channels: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

  for (const colorType of [0, 2, 4, 6]) {
    for (const bitDepth of [8, 16]) {
      it(`colorType ${colorType}, ${bitDepth}-bit round-trips exactly`, async () => {
        const n = channels[colorType]!;
        const r = rng(colorType * 100 + bitDepth);
        const max = 2 ** bitDepth - 1;
        const samples = Array.from({ length: W * H * n }, (_, i) =>
          // include the extremes, then random values
          i === 0 ? 0 : i === 1 ? max : Math.floor(r() * (max + 1)),
        );
        let input: Buffer;
        if (bitDepth === 8) input = Buffer.from(samples);
        else input = Buffer.from(new Uint16Array(samples).buffer); // pngjs reads 16-bit input natively
        const file = PNG.sync.write(
          { width: W, height: H, data: input } as unknown as InstanceType<typeof PNG>,
          { colorType: colorType as 0 | 2 | 4 | 6, inputColorType: colorType as 0 | 2 | 4 | 6, bitDepth: bitDepth as 8 | 16, inputHasAlpha: colorType >= 4 },
        );
        // the encoder really wrote what we asked for
        expect(file[24]).toBe(bitDepth);
        expect(file[25]).toBe(colorType);

        const img = await decodeImage(new Uint8Array(file));
        expect(img.width).toBe(W);
        expect(img.height).toBe(H);
        expect(img.data).toBeInstanceOf(Uint8Array);
        expect(img.data.length).toBe(W * H * 4);
        const expected = new Uint8Array(W * H * 4);
        for (let p = 0; p < W * H; p++) {
          const s = samples.slice(p * n, p * n + n).map((v) => to8(v, bitDepth));
          const [r0, g0, b0, a0] =
            n === 1 ? [s[0], s[0], s[0], 255] : n === 2 ? [s[0], s[0], s[0], s[1]] : n === 3 ? [...s, 255] : s;
          expected.set([r0!, g0!, b0!, a0!], p * 4);
        }
        expect(Array.from(img.data)).toEqual(Array.from(expected));
      });
    }
  }

  it('16-bit samples are scaled as round(v * 255 / 65535)', async () => {
    const values = [0, 1, 128, 129, 257, 32767, 32768, 65279, 65535];
    const row = values.flatMap((v) => [v >> 8, v & 255]);
    const img = await decodeImage(buildPng(values.length, 1, 16, 0, [row]));
    expect(Array.from({ length: values.length }, (_, i) => img.data[i * 4])).toEqual(
      values.map((v) => Math.round((v * 255) / 65535)),
    );
    expect(Array.from({ length: values.length }, (_, i) => img.data[i * 4])).toEqual([
      0, 0, 0, 1, 1, 127, 128, 254, 255,
    ]);
  });

  it('1/2/4-bit greyscale is expanded to 8 bits', async () => {
    // 1-bit: 8 pixels 10110001; 2-bit: 4 pixels 0,1,2,3; 4-bit: 2 pixels 0x0, 0xf -> then 0x7, 0x8
    let img = await decodeImage(buildPng(8, 1, 1, 0, [[0b10110001]]));
    expect(Array.from({ length: 8 }, (_, i) => img.data[i * 4])).toEqual([255, 0, 255, 255, 0, 0, 0, 255]);
    img = await decodeImage(buildPng(4, 1, 2, 0, [[0b00011011]]));
    expect(Array.from({ length: 4 }, (_, i) => img.data[i * 4])).toEqual([0, 85, 170, 255]);
    img = await decodeImage(buildPng(4, 1, 4, 0, [[0x0f, 0x78]]));
    expect(Array.from({ length: 4 }, (_, i) => img.data[i * 4])).toEqual([0, 255, 119, 136]);
    expect(px(img, 2, 0)).toEqual([119, 119, 119, 255]);
  });

  it('palette images (with tRNS alpha) become RGBA', async () => {
    const plte = chunk('PLTE', Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 12, 34, 56]));
    const trns = chunk('tRNS', Buffer.from([255, 128, 0])); // entry 3 has no tRNS entry -> opaque
    const img = await decodeImage(buildPng(4, 1, 8, 3, [[0, 1, 2, 3]], [plte, trns]));
    expect(px(img, 0, 0)).toEqual([255, 0, 0, 255]);
    expect(px(img, 1, 0)).toEqual([0, 255, 0, 128]);
    expect(px(img, 2, 0)).toEqual([0, 0, 255, 0]); // fully transparent but keeps its stored RGB
    expect(px(img, 3, 0)).toEqual([12, 34, 56, 255]);
    // 2-bit palette indices
    const img2 = await decodeImage(buildPng(4, 1, 2, 3, [[0b00011011]], [plte]));
    expect([0, 1, 2, 3].map((x) => px(img2, x, 0))).toEqual([
      [255, 0, 0, 255],
      [0, 255, 0, 255],
      [0, 0, 255, 255],
      [12, 34, 56, 255],
    ]);
  });

  it('color-key transparency (tRNS, RGB and grey) keeps the stored color, alpha 0', async () => {
    const rgb = await decodeImage(buildPng(2, 1, 8, 2, [[10, 20, 30, 40, 50, 60]], [chunk('tRNS', Buffer.from([0, 40, 0, 50, 0, 60]))]));
    expect(px(rgb, 0, 0)).toEqual([10, 20, 30, 255]);
    expect(px(rgb, 1, 0)).toEqual([40, 50, 60, 0]);
    const grey16 = await decodeImage(
      buildPng(2, 1, 16, 0, [[0x12, 0x34, 0x80, 0x00]], [chunk('tRNS', Buffer.from([0x80, 0x00]))]),
    );
    expect(px(grey16, 0, 0)).toEqual([to8(0x1234, 16), to8(0x1234, 16), to8(0x1234, 16), 255]);
    expect(px(grey16, 1, 0)).toEqual([128, 128, 128, 0]);
    const grey2 = await decodeImage(buildPng(4, 1, 2, 0, [[0b00011011]], [chunk('tRNS', Buffer.from([0, 2]))]));
    expect([0, 1, 2, 3].map((x) => px(grey2, x, 0))).toEqual([
      [0, 0, 0, 255],
      [85, 85, 85, 255],
      [170, 170, 170, 0],
      [255, 255, 255, 255],
    ]);
  });

  it('interlaced (Adam7) PNG', async () => {
    const src = randomRgba(13, 11, 5);
    const png = new PNG({ width: 13, height: 11 });
    png.data = Buffer.from(src.data);
    const plain = PNG.sync.write(png);
    const ref = await decodeImage(new Uint8Array(plain));
    expect(Array.from(ref.data)).toEqual(Array.from(src.data));
    // Interlaced file built by hand: RGBA 8-bit, Adam7 passes, filter 0 on every row.
    const passes = [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ];
    const parts: number[] = [];
    for (const [x0, y0, dx, dy] of passes) {
      for (let y = y0!; y < 11; y += dy!) {
        const row: number[] = [];
        for (let x = x0!; x < 13; x += dx!) row.push(...px(src, x, y));
        if (row.length) parts.push(0, ...row);
      }
    }
    const file = Buffer.concat([
      PNG_SIG,
      ihdr(13, 11, 8, 6, 1),
      chunk('IDAT', deflateSync(Buffer.from(parts))),
      chunk('IEND', Buffer.alloc(0)),
    ]);
    const img = await decodeImage(file);
    expect(Array.from(img.data)).toEqual(Array.from(src.data));
  });

  it('accepts a Uint8Array view with a byte offset', async () => {
    const file = buildPng(2, 1, 8, 2, [[1, 2, 3, 4, 5, 6]]);
    const padded = new Uint8Array(file.length + 10);
    padded.set(file, 7);
    const img = await decodeImage(padded.subarray(7, 7 + file.length));
    expect(px(img, 1, 0)).toEqual([4, 5, 6, 255]);
  });
});

describe('decodeImage: JPEG', () => {
  function smooth(w: number, h: number): RgbaImage {
    const data = new Uint8Array(w * h * 4);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 4;
        data[o] = Math.round((255 * x) / (w - 1));
        data[o + 1] = Math.round((255 * y) / (h - 1));
        data[o + 2] = Math.round(128 + 100 * Math.sin(x / 9 + y / 13));
        data[o + 3] = 255;
      }
    }
    return { data, width: w, height: h };
  }

  for (const [w, h] of [
    [64, 48],
    [37, 23],
    [1, 1],
    [301, 7],
  ] as const) {
    it(`${w}x${h} encoded by jpeg-js decodes within tolerance`, async () => {
      const src = w === 1 ? { data: new Uint8Array([200, 100, 50, 255]), width: 1, height: 1 } : smooth(w, h);
      const file = jpeg.encode({ data: src.data, width: w, height: h }, 95).data;
      const img = await decodeImage(new Uint8Array(file));
      expect(img.width).toBe(w);
      expect(img.height).toBe(h);
      expect(img.data.length).toBe(w * h * 4);
      let sum = 0;
      let max = 0;
      for (let i = 0; i < img.data.length; i++) {
        if (i % 4 === 3) {
          expect(img.data[i]).toBe(255);
          continue;
        }
        const d = Math.abs(img.data[i]! - src.data[i]!);
        sum += d;
        max = Math.max(max, d);
      }
      expect(sum / (w * h * 3)).toBeLessThan(2);
      expect(max).toBeLessThan(16);
    });
  }
});

describe('decodeImage: sample files', () => {
  it.each([
    ['cat-photo.jpg', 451, 300],
    ['rocket-photo.jpg', 640, 427],
    ['beach-trip-drawing.png', 529, 391],
  ])('%s is %ix%i', async (name, w, h) => {
    const img = await decodeImage(sample(name));
    expect(img.width).toBe(w);
    expect(img.height).toBe(h);
    expect(img.data.length).toBe(w * h * 4);
    // photos are not blank: some spread in each channel
    for (let c = 0; c < 3; c++) {
      let lo = 255;
      let hi = 0;
      for (let i = c; i < img.data.length; i += 4) {
        lo = Math.min(lo, img.data[i]!);
        hi = Math.max(hi, img.data[i]!);
      }
      expect(hi - lo).toBeGreaterThan(100);
    }
  });

  it('the RGBA drawing has real alpha, the JPEGs are opaque', async () => {
    const png = await decodeImage(sample('beach-trip-drawing.png'));
    const alphas = new Set<number>();
    for (let i = 3; i < png.data.length; i += 4) alphas.add(png.data[i]!);
    expect(alphas.size).toBeGreaterThan(1);
    const jpg = await decodeImage(sample('cat-photo.jpg'));
    for (let i = 3; i < jpg.data.length; i += 4) if (jpg.data[i] !== 255) throw new Error('alpha not 255');
  });
});

// ---- errors -----------------------------------------------------------------------

async function decodeError(bytes: Uint8Array, options?: { maxPixels?: number }): Promise<ImageDecodeError> {
  try {
    await decodeImage(bytes, options);
  } catch (e) {
    expect(e).toBeInstanceOf(ImageDecodeError);
    return e as ImageDecodeError;
  }
  throw new Error('decodeImage did not throw');
}

describe('decodeImage: errors', () => {
  it('empty input', async () => {
    expect((await decodeError(new Uint8Array(0))).message).toMatch(/empty/);
  });

  it('random bytes', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed);
      const b = Uint8Array.from({ length: 1 + Math.floor(r() * 300) }, () => Math.floor(r() * 256));
      if (b[0] === 0xff || b[0] === 0x89) b[0] = 0x42;
      expect((await decodeError(b)).message).toMatch(/unrecognized|unsupported/);
    }
  });

  it('random bytes after a JPEG or PNG signature', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const r = rng(seed);
      const b = Uint8Array.from({ length: 20 + Math.floor(r() * 2000) }, () => Math.floor(r() * 256));
      b.set(seed % 2 ? [0xff, 0xd8, 0xff] : PNG_SIG);
      await decodeError(b);
    }
  });

  it('other formats are named', async () => {
    expect((await decodeError(new TextEncoder().encode('GIF89a\x01\x00\x01\x00'))).message).toMatch(/GIF/);
    expect((await decodeError(new TextEncoder().encode('RIFF\x00\x00\x00\x00WEBPVP8 '))).message).toMatch(/WebP/);
    expect((await decodeError(new TextEncoder().encode('BM\x00\x00\x00\x00'))).message).toMatch(/BMP/);
  });

  it('truncated JPEG', async () => {
    const cat = sample('cat-photo.jpg');
    for (const n of [3, 4, 20, 200, 600, 5000, Math.floor(cat.length / 2), cat.length - 100]) {
      await decodeError(cat.subarray(0, n));
    }
  });

  it('truncated PNG', async () => {
    const png = sample('beach-trip-drawing.png');
    for (const n of [8, 20, 33, 40, 1000, Math.floor(png.length / 2), png.length - 13, png.length - 1]) {
      expect((await decodeError(png.subarray(0, n))).message).toMatch(/truncated/);
    }
    // a PNG built here, cut inside IDAT and inside IEND
    const small = buildPng(30, 30, 8, 2, Array.from({ length: 30 }, (_, y) => Array.from({ length: 90 }, (_, i) => (i * y) & 255)));
    await decodeError(small.subarray(0, small.length - 20));
    await decodeError(small.subarray(0, small.length - 5));
  });

  it('corrupt PNG (bad CRC, bad IHDR)', async () => {
    const file = Uint8Array.from(buildPng(2, 2, 8, 2, [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]));
    const badCrc = file.slice();
    badCrc[30] ^= 0xff;
    expect((await decodeError(badCrc)).message).toMatch(/CRC mismatch in the IHDR chunk/);
    const badData = file.slice();
    badData[45] ^= 0x01; // inside IDAT
    expect((await decodeError(badData)).message).toMatch(/CRC mismatch in the IDAT chunk/);
    // bytes after IEND are ignored
    const trailing = Buffer.concat([file, Buffer.from('trailing garbage')]);
    expect(px(await decodeImage(trailing), 1, 1)).toEqual([10, 11, 12, 255]);
    // valid chunk structure, but the zlib stream is garbage
    const badZlib = Buffer.concat([PNG_SIG, ihdr(2, 2, 8, 2), chunk('IDAT', Buffer.from([1, 2, 3, 4, 5])), chunk('IEND', Buffer.alloc(0))]);
    expect((await decodeError(badZlib)).message).toMatch(/not a valid zlib stream/);
    const noIdat = Buffer.concat([PNG_SIG, ihdr(2, 2, 8, 2), chunk('IEND', Buffer.alloc(0))]);
    expect((await decodeError(noIdat)).message).toMatch(/no image data/);
    // interlaced, image data too short for the declared size
    const shortInterlaced = Buffer.concat([PNG_SIG, ihdr(20, 20, 8, 2, 1), chunk('IDAT', deflateSync(Buffer.alloc(30))), chunk('IEND', Buffer.alloc(0))]);
    expect((await decodeError(shortInterlaced)).message).toMatch(/invalid PNG/);
    const badDepth = Buffer.concat([PNG_SIG, ihdr(2, 2, 7, 2), chunk('IEND', Buffer.alloc(0))]);
    expect((await decodeError(badDepth)).message).toMatch(/bit depth 7/);
    const badType = Buffer.concat([PNG_SIG, ihdr(2, 2, 8, 5), chunk('IEND', Buffer.alloc(0))]);
    expect((await decodeError(badType)).message).toMatch(/color type 5/);
    const noPalette = buildPng(2, 1, 8, 3, [[0, 0]]);
    expect((await decodeError(noPalette)).message).toMatch(/palette/);
    const noIhdr = Buffer.concat([PNG_SIG, chunk('IEND', Buffer.alloc(0)), Buffer.alloc(20)]);
    expect((await decodeError(noIhdr)).message).toMatch(/IHDR/);
  });

  // pngjs 7 (the previous decoder) returned uninitialised memory as pixels here.
  it('non-interlaced PNG whose complete deflate stream is too short: ImageDecodeError', async () => {
    for (let i = 0; i < 20; i++) {
      const short = Buffer.concat([PNG_SIG, ihdr(20, 20 + i, 8, 2), chunk('IDAT', deflateSync(Buffer.alloc(30))), chunk('IEND', Buffer.alloc(0))]);
      expect((await decodeError(short)).message).toMatch(/truncated or corrupt: it decompresses to 30 bytes/);
    }
  });

  it('a PNG whose IHDR claims 100000x100000 is refused before decoding', async () => {
    const file = Buffer.concat([
      PNG_SIG,
      ihdr(100000, 100000, 8, 6),
      chunk('IDAT', deflateSync(Buffer.alloc(1000))),
      chunk('IEND', Buffer.alloc(0)),
    ]);
    const before = process.memoryUsage().arrayBuffers;
    const e = await decodeError(file);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20); // nothing decoded
    expect(e.message).toMatch(/too large/);
    expect(e.message).toMatch(/100000 x 100000/);
  });

  it('a JPEG whose frame header claims 65535x65535 is refused before decoding', async () => {
    // SOI, SOF0 (8-bit, 65535 x 65535, 3 components), nothing else
    const file = new Uint8Array([
      0xff, 0xd8, 0xff, 0xc0, 0x00, 0x11, 0x08, 0xff, 0xff, 0xff, 0xff, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01,
      0x03, 0x11, 0x01,
    ]);
    const before = process.memoryUsage().arrayBuffers;
    const e = await decodeError(file);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 << 20); // nothing decoded
    expect(e.message).toMatch(/too large/);
  });

  it('maxPixels applies to JPEG and PNG', async () => {
    expect((await decodeError(sample('cat-photo.jpg'), { maxPixels: 451 * 300 - 1 })).message).toMatch(/too large/);
    expect((await decodeImage(sample('cat-photo.jpg'), { maxPixels: 451 * 300 })).width).toBe(451);
    expect((await decodeError(sample('beach-trip-drawing.png'), { maxPixels: 1000 })).message).toMatch(/too large/);
    expect(MAX_IMAGE_PIXELS).toBe(50_000_000);
    await expect(decodeImage(sample('cat-photo.jpg'), { maxPixels: 0 })).rejects.toThrow(InputError);
  });

  it('zero-size images', async () => {
    const png = Buffer.concat([PNG_SIG, ihdr(0, 10, 8, 2), chunk('IEND', Buffer.alloc(0))]);
    expect((await decodeError(png)).message).toMatch(/zero size/);
    const jpg = new Uint8Array([0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x00, 0x01, 0x01, 0x11, 0x00]);
    expect((await decodeError(jpg)).message).toMatch(/zero size/);
  });

  it('unsupported JPEG processes are named', async () => {
    const arith = new Uint8Array([0xff, 0xd8, 0xff, 0xc9, 0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00]);
    expect((await decodeError(arith)).message).toMatch(/arithmetic/);
    const twelveBit = new Uint8Array([0xff, 0xd8, 0xff, 0xc1, 0x00, 0x0b, 0x0c, 0x00, 0x10, 0x00, 0x10, 0x01, 0x01, 0x11, 0x00]);
    expect((await decodeError(twelveBit)).message).toMatch(/12-bit/);
  });

  it('not a Uint8Array', async () => {
    await decodeError('hello' as unknown as Uint8Array);
    await decodeError(null as unknown as Uint8Array);
  });

  it('randomly corrupted real files decode or throw ImageDecodeError, nothing else', async () => {
    const files = [sample('cat-photo.jpg'), sample('beach-trip-drawing.png')];
    const r = rng(1234);
    for (let k = 0; k < 60; k++) {
      const b = Uint8Array.from(files[k % 2]!);
      const flips = 1 + Math.floor(r() * 8);
      for (let f = 0; f < flips; f++) b[8 + Math.floor(r() * (b.length - 8))] = Math.floor(r() * 256);
      try {
        const img = await decodeImage(b);
        expect(img.data.length).toBe(img.width * img.height * 4);
      } catch (e) {
        expect(e).toBeInstanceOf(ImageDecodeError);
      }
    }
  });
});

// ---- JPEG: frames and scans out of proportion to the data --------------------------------

/** A JPEG marker segment: marker, big-endian length, body. */
function seg(marker: number, body: number[]): number[] {
  return [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 255, ...body];
}

/**
 * A flat mid-grey progressive JPEG (one component) as small as the format allows: one-code
 * Huffman tables, a DC scan of 1 bit per block, then `acScans` AC scans, each either one
 * end-of-band run per 16384 blocks or (`empty`) Ss > Se and no data at all.
 */
function progressiveGrey(w: number, h: number, acScans: number, empty = false): Uint8Array {
  const blocks = Math.ceil(w / 8) * Math.ceil(h / 8);
  const dht = (cls: number, symbol: number): number[] => seg(0xc4, [cls << 4, 1, ...Array<number>(15).fill(0), symbol]);
  const out = [0xff, 0xd8, ...seg(0xdb, [0, ...Array<number>(64).fill(1)])];
  out.push(...seg(0xc2, [8, h >> 8, h & 255, w >> 8, w & 255, 1, 1, 0x11, 0]), ...dht(0, 0), ...dht(1, 0xe0));
  out.push(...seg(0xda, [1, 1, 0x00, 0, 0, 0]), ...Array<number>(Math.ceil(blocks / 8)).fill(0)); // code '0': DC diff 0
  // code '0' then 14 zero bits: EOBRUN 16384
  const acBytes = empty ? 0 : Math.ceil((Math.ceil(blocks / 16384) * 15) / 8);
  for (let s = 0; s < acScans; s++) out.push(...seg(0xda, [1, 1, 0x00, empty ? 5 : 1, empty ? 1 : 63, 0]), ...Array<number>(acBytes).fill(0));
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

/** Offset of the first SOFn marker's 0xFF. */
function sofAt(b: Uint8Array): number {
  let o = 2;
  while (!(b[o + 1]! >= 0xc0 && b[o + 1]! <= 0xc2)) o += 2 + ((b[o + 2]! << 8) | b[o + 3]!);
  return o;
}

function withSize(b: Uint8Array, w: number, h: number): Uint8Array {
  const out = Uint8Array.from(b);
  const o = sofAt(out);
  out.set([h >> 8, h & 255, w >> 8, w & 255], o + 5);
  return out;
}

describe('decodeImage: JPEG data out of proportion to the frame is refused fast', () => {
  // Found by `node scripts/fuzz.mjs --cases 100000 --seed 1` (replays 0/1759, 1/3484, 0/37721):
  // the cat photo with its SOF set to 451 x 65535 or 7000 x 7000 passed the old one-byte-per-4096-
  // pixels check, and jpeg-js spent 4-12 s allocating the frame before meeting the end of the data.
  it('the 38 KB cat photo claiming 451 x 65535 or 7000 x 7000', async () => {
    const cat = sample('cat-photo.jpg');
    for (const [w, h] of [
      [451, 65535],
      [7000, 7000],
      [4000, 4000],
    ] as const) {
      expect((await decodeError(withSize(cat, w, h))).message).toMatch(/truncated or corrupt: \d+ bytes of image data cannot code/);
    }
    expect((await decodeImage(withSize(cat, 451, 300))).height).toBe(300);
    // within the 2-bits-per-block bound: left to jpeg-js, which meets the end of the data
    expect((await decodeError(withSize(cat, 451, 600))).message).toMatch(/unexpected marker/);
  }, 3000);

  it('a frame with no scan at all, padded with a comment', async () => {
    const head = progressiveGrey(4000, 4000, 0);
    const sos = head.findIndex((x, i) => x === 0xff && head[i + 1] === 0xda);
    const file = Uint8Array.from([...head.subarray(0, sos), ...seg(0xfe, Array<number>(65000).fill(0x20)), 0xff, 0xd9]);
    expect((await decodeError(file)).message).toMatch(/0 bytes of image data cannot code a 4000 x 4000 image/);
  }, 3000);

  it('a flat progressive JPEG at the 1-bit-per-block minimum decodes', async () => {
    for (const [w, h] of [
      [64, 64],
      [1000, 999],
    ] as const) {
      const img = await decodeImage(progressiveGrey(w, h, 3));
      expect([img.width, img.height]).toEqual([w, h]);
      expect(img.data.every((v, i) => v === (i % 4 === 3 ? 255 : 128))).toBe(true);
    }
  }, 3000);

  it('progressive scans that skip every block for no data are capped (256 passes)', async () => {
    expect((await decodeImage(progressiveGrey(800, 800, 250, true))).width).toBe(800);
    // 2000 scans of 10 bytes each over 4 MP: jpeg-js took ~3 s
    expect((await decodeError(progressiveGrey(2000, 2000, 2000, true))).message).toMatch(/more than 256 passes/);
  }, 3000);

  it('more than one frame, and sampling factors outside 1..4, are refused before decoding', async () => {
    const cat = sample('cat-photo.jpg');
    const o = sofAt(cat);
    const len = (cat[o + 2]! << 8) | cat[o + 3]!;
    const twoFrames = Uint8Array.from([...cat.subarray(0, o + 2 + len), ...withSize(cat, 7000, 7000).subarray(o, o + 2 + len), ...cat.subarray(o + 2 + len)]);
    expect((await decodeError(twoFrames)).message).toMatch(/more than one frame/);
    const sampling = Uint8Array.from(cat);
    sampling[o + 11] = 0xf1; // component 1: 15 x 1
    expect((await decodeError(sampling)).message).toMatch(/sampling factor/);
  }, 3000);
});

// ---- PNG: every format, filter and interlacing; corrupt image data ------------------------

/** Filter one unfiltered scanline with PNG filter type `t` (bpp: bytes per pixel, at least 1). */
function filterLine(t: number, line: Uint8Array, prev: Uint8Array | null, bpp: number): number[] {
  const out = [t];
  for (let i = 0; i < line.length; i++) {
    const a = i >= bpp ? line[i - bpp]! : 0;
    const b = prev ? prev[i]! : 0;
    const c = prev && i >= bpp ? prev[i - bpp]! : 0;
    let pred = 0;
    if (t === 1) pred = a;
    else if (t === 2) pred = b;
    else if (t === 3) pred = (a + b) >> 1;
    else if (t === 4) {
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
    out.push((line[i]! - pred) & 255);
  }
  return out;
}

const ADAM7_PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/**
 * The filtered scanlines (zlib payload before compression) of an image given as
 * `samples[(y * width + x) * channels + c]`, non-interlaced or Adam7, each row with a
 * random filter type. An independent encoder: shares no code with src/image.ts.
 */
function pngScanlines(
  width: number,
  height: number,
  depth: number,
  channels: number,
  samples: ArrayLike<number>,
  interlace: boolean,
  r: () => number,
): Uint8Array {
  const bpp = Math.max(1, (depth * channels) / 8);
  const passes = interlace ? ADAM7_PASSES : ([[0, 0, 1, 1]] as const);
  const out: number[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    const xs: number[] = [];
    for (let x = x0; x < width; x += dx) xs.push(x);
    if (xs.length === 0) continue;
    let prev: Uint8Array | null = null;
    for (let y = y0; y < height; y += dy) {
      const line = new Uint8Array(Math.ceil((xs.length * channels * depth) / 8));
      let bit = 0;
      for (const x of xs) {
        for (let c = 0; c < channels; c++) {
          const v = samples[(y * width + x) * channels + c]!;
          if (depth === 16) {
            line[bit >> 3] = v >> 8;
            line[(bit >> 3) + 1] = v & 255;
          } else if (depth === 8) line[bit >> 3] = v;
          else line[bit >> 3]! |= v << (8 - depth - (bit & 7));
          bit += depth;
        }
      }
      out.push(...filterLine(Math.floor(r() * 5), line, prev, bpp));
      prev = line;
    }
  }
  return Uint8Array.from(out);
}

function encodePng(
  width: number,
  height: number,
  depth: number,
  colorType: number,
  samples: ArrayLike<number>,
  options: { interlace?: boolean; seed?: number; extra?: Buffer[] } = {},
): Uint8Array {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]!;
  const lines = pngScanlines(width, height, depth, channels, samples, options.interlace ?? false, rng(options.seed ?? 1));
  return Buffer.concat([
    PNG_SIG,
    ihdr(width, height, depth, colorType, options.interlace ? 1 : 0),
    ...(options.extra ?? []),
    chunk('IDAT', deflateSync(lines)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The RGBA a correct decoder returns for samples of a color type without tRNS. */
function expectedRgba(depth: number, colorType: number, samples: ArrayLike<number>, palette?: number[][]): number[] {
  const n = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]!;
  const v8 = (v: number): number => Math.round((v * 255) / (2 ** depth - 1));
  const out: number[] = [];
  for (let i = 0; i < samples.length; i += n) {
    const s = Array.from({ length: n }, (_, c) => samples[i + c]!);
    if (colorType === 0) out.push(v8(s[0]!), v8(s[0]!), v8(s[0]!), 255);
    else if (colorType === 2) out.push(v8(s[0]!), v8(s[1]!), v8(s[2]!), 255);
    else if (colorType === 3) out.push(...palette![s[0]!]!, 255);
    else if (colorType === 4) out.push(v8(s[0]!), v8(s[0]!), v8(s[0]!), v8(s[1]!));
    else out.push(...s.map(v8));
  }
  return out;
}

function randomSamples(count: number, depth: number, r: () => number): number[] {
  const max = 2 ** depth - 1;
  return Array.from({ length: count }, (_, i) => (i === 0 ? 0 : i === 1 ? max : Math.floor(r() * (max + 1))));
}

describe('decodeImage: PNG, every color type, bit depth, filter and interlacing', () => {
  it('an interlaced 16-bit RGBA PNG decodes exactly', async () => {
    for (const [w, h, seed] of [
      [33, 19, 1],
      [1, 1, 2],
      [3, 2, 3],
      [8, 8, 4],
      [9, 17, 5],
    ] as const) {
      const r = rng(seed);
      const samples = randomSamples(w * h * 4, 16, r);
      const file = encodePng(w, h, 16, 6, samples, { interlace: true, seed });
      expect(file[28]).toBe(1);
      const img = await decodeImage(file);
      expect([img.width, img.height]).toEqual([w, h]);
      expect(img.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(img.data)).toEqual(expectedRgba(16, 6, samples));
    }
  });

  const formats: [number, number][] = [
    [0, 1], [0, 2], [0, 4], [0, 8], [0, 16],
    [2, 8], [2, 16],
    [3, 1], [3, 2], [3, 4], [3, 8],
    [4, 8], [4, 16],
    [6, 8], [6, 16],
  ];
  for (const [colorType, depth] of formats) {
    for (const interlace of [false, true]) {
      it(`colorType ${colorType}, ${depth}-bit, ${interlace ? 'Adam7' : 'not interlaced'}, random filters`, async () => {
        const n = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType]!;
        for (const [w, h] of [
          [13, 11],
          [1, 1],
          [3, 2],
          [5, 9],
          [17, 3],
        ] as const) {
          const r = rng(w * 1000 + h * 10 + depth + colorType * 100);
          const palette = Array.from({ length: 2 ** Math.min(depth, 8) }, () => [0, 0, 0].map(() => Math.floor(r() * 256)));
          const plte = colorType === 3 ? [chunk('PLTE', Buffer.from(palette.flat()))] : [];
          const samples = randomSamples(w * h * n, depth, r);
          const file = encodePng(w, h, depth, colorType, samples, { interlace, seed: w + h, extra: plte });
          const img = await decodeImage(file);
          expect(Array.from(img.data)).toEqual(expectedRgba(depth, colorType, samples, palette));
        }
      });
    }
  }

  it('16-bit to 8-bit is round(v * 255 / 65535) for all 65536 values', async () => {
    const samples = Array.from({ length: 65536 }, (_, v) => v);
    const img = await decodeImage(encodePng(256, 256, 16, 0, samples));
    for (let v = 0; v < 65536; v++) {
      if (img.data[v * 4] !== Math.round((v * 255) / 65535)) throw new Error(`16-bit value ${v} -> ${img.data[v * 4]}`);
    }
  });

  it('the sample PNG decodes exactly as pngjs decodes it', async () => {
    const file = sample('beach-trip-drawing.png');
    const ours = await decodeImage(file);
    const theirs = PNG.sync.read(Buffer.from(file));
    expect(ours.data.length).toBe(theirs.data.length);
    expect(Buffer.from(ours.data).equals(theirs.data)).toBe(true);
  });

  it('tolerates what libpng tolerates: misplaced or invalid tRNS, unknown and broken ancillary chunks', async () => {
    const rgba = [1, 2, 3, 4, 5, 6, 7, 8];
    // tRNS in an RGBA image (fast-png alone throws), a corrupt iCCP, a private chunk
    const iccp = chunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), Buffer.from([1, 2, 3, 4])]));
    let img = await decodeImage(encodePng(2, 1, 8, 6, rgba, { extra: [chunk('tRNS', Buffer.from([0, 1])), iccp, chunk('prIv', Buffer.from('x'))] }));
    expect(Array.from(img.data)).toEqual(rgba);
    // palette tRNS longer than the palette: ignored; index past the palette: opaque black
    const plte = chunk('PLTE', Buffer.from([10, 20, 30, 40, 50, 60]));
    img = await decodeImage(encodePng(3, 1, 8, 3, [0, 1, 2], { extra: [plte, chunk('tRNS', Buffer.from([0, 0, 0]))] }));
    expect(Array.from(img.data)).toEqual([10, 20, 30, 255, 40, 50, 60, 255, 0, 0, 0, 255]);
    // tRNS before PLTE is ignored; grey tRNS of the wrong length is ignored
    img = await decodeImage(encodePng(2, 1, 8, 3, [0, 1], { extra: [chunk('tRNS', Buffer.from([0])), plte] }));
    expect(Array.from(img.data)).toEqual([10, 20, 30, 255, 40, 50, 60, 255]);
    img = await decodeImage(encodePng(2, 1, 8, 0, [0, 9], { extra: [chunk('tRNS', Buffer.from([0, 0, 0, 0]))] }));
    expect(Array.from(img.data)).toEqual([0, 0, 0, 255, 9, 9, 9, 255]);
    // a 16-bit RGB color key compares all 16 bits
    img = await decodeImage(
      encodePng(2, 1, 16, 2, [0x1234, 5, 6, 0x1235, 5, 6], { extra: [chunk('tRNS', Buffer.from([0x12, 0x34, 0, 5, 0, 6]))] }),
    );
    expect(Array.from(img.data)).toEqual([18, 0, 0, 0, 18, 0, 0, 255]);
  });

  it('image data split over many IDAT chunks', async () => {
    const samples = randomSamples(20 * 10 * 3, 8, rng(77));
    const one = encodePng(20, 10, 8, 2, samples, { seed: 3 });
    const lines = pngScanlines(20, 10, 8, 3, samples, false, rng(3));
    const z = deflateSync(lines);
    const idats = [];
    for (let i = 0; i < z.length; i += 7) idats.push(chunk('IDAT', z.subarray(i, i + 7)));
    const many = Buffer.concat([PNG_SIG, ihdr(20, 10, 8, 2), ...idats, chunk('IEND', Buffer.alloc(0))]);
    expect(Array.from((await decodeImage(many)).data)).toEqual(Array.from((await decodeImage(one)).data));
  });
});

describe('decodeImage: PNG with corrupt or hostile image data (never pixels)', () => {
  /** A PNG whose IDAT holds exactly `zlib` (chunk CRC valid). */
  function withZlib(w: number, h: number, depth: number, colorType: number, zlib: Uint8Array, interlace = 0): Uint8Array {
    return Buffer.concat([PNG_SIG, ihdr(w, h, depth, colorType, interlace), chunk('IDAT', zlib), chunk('IEND', Buffer.alloc(0))]);
  }
  const W = 40;
  const H = 30;
  const samples = randomSamples(W * H * 4, 8, rng(5));
  const lines = pngScanlines(W, H, 8, 4, samples, false, rng(6));
  const good = deflateSync(lines);

  it('control: the uncorrupted stream decodes', async () => {
    expect(Array.from((await decodeImage(withZlib(W, H, 8, 6, good))).data)).toEqual(samples);
  });

  it('valid zlib header, then random deflate data', async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      const z = Uint8Array.from({ length: 4 + Math.floor(r() * 3000) }, () => Math.floor(r() * 256));
      z[0] = 0x78;
      z[1] = 0x9c;
      for (const interlace of [0, 1]) {
        expect((await decodeError(withZlib(W, H, 8, 6, z, interlace))).message).toMatch(/invalid PNG/);
      }
    }
  });

  it('valid zlib header, then a real deflate stream with bytes changed', async () => {
    const r = rng(99);
    for (let k = 0; k < 60; k++) {
      const z = Uint8Array.from(good);
      const flips = 1 + Math.floor(r() * 4);
      for (let f = 0; f < flips; f++) z[2 + Math.floor(r() * (z.length - 6))] ^= 1 + Math.floor(r() * 255);
      expect((await decodeError(withZlib(W, H, 8, 6, z))).message).toMatch(/invalid PNG: (corrupt|the image data|checksum)/);
    }
  });

  it('truncated but well-framed IDAT (stream cut anywhere)', async () => {
    const r = rng(7);
    const cuts = [3, 4, 8, 50, good.length - 5, good.length - 4, good.length - 1];
    for (let k = 0; k < 20; k++) cuts.push(3 + Math.floor(r() * (good.length - 4)));
    for (const cut of cuts) {
      for (const interlace of [0, 1]) {
        const e = await decodeError(withZlib(W, H, 8, 6, good.subarray(0, cut), interlace));
        expect(e.message).toMatch(/invalid PNG: (the image data|corrupt|checksum)/);
      }
    }
  });

  it('wrong Adler-32', async () => {
    const z = Uint8Array.from(good);
    z[z.length - 1] ^= 1;
    expect((await decodeError(withZlib(W, H, 8, 6, z))).message).toMatch(/checksum mismatch in the image data/);
  });

  it('more image data than the header implies', async () => {
    const extra = deflateSync(Buffer.concat([lines, Buffer.alloc(1)]));
    expect((await decodeError(withZlib(W, H, 8, 6, extra))).message).toMatch(/more than the 4830 bytes/);
  });

  it('a bad filter type byte', async () => {
    const bad = Uint8Array.from(lines);
    bad[(1 + W * 4) * 3] = 5;
    expect((await decodeError(withZlib(W, H, 8, 6, deflateSync(bad)))).message).toMatch(/invalid PNG: .*filter/i);
  });

  it('a decompression bomb (4 GiB of zeros in 4 MB) is stopped at the size IHDR implies', async () => {
    // 1 MiB of zeros as non-final, byte-aligned deflate blocks: repeating it is a valid stream
    const seg = deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    const parts: Uint8Array[] = [Buffer.from([0x78, 0x9c])];
    for (let i = 0; i < 4096; i++) parts.push(seg);
    parts.push(Buffer.from([0x03, 0x00, 0, 0, 0, 1])); // final empty block, Adler-32
    const file = withZlib(16, 16, 8, 6, Buffer.concat(parts));
    expect(file.length).toBeLessThan(8 << 20);
    const before = process.memoryUsage().arrayBuffers;
    const e = await decodeError(file);
    expect(e.message).toMatch(/decompression bomb/);
    // Inflating all of it would allocate 4 GiB; stopping at IHDR's size allocates almost nothing.
    // (Memory, not time: this machine's speed is no test's business.)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  });
});

describe('decodeImage: codecs load lazily', () => {
  it('src/image.ts has no static import of a codec', () => {
    const src = readFileSync(fileURLToPath(new URL('../src/image.ts', import.meta.url)), 'utf8');
    expect(src).not.toMatch(/^import\s+(?!type\b)[^;]*from\s+'(jpeg-js|fast-png|fflate|pngjs)'/m);
    expect(src).toMatch(/import\('jpeg-js'\)/);
    expect(src).toMatch(/import\('fast-png'\)/);
  });
});

// ---- preprocessing --------------------------------------------------------------------

describe('imageToInput matches tf.image.resizeBilinear(...).mul(scale).add(offset)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
    await tf.ready();
  });

  function tfReference(img: RgbaImage, h: number, w: number, pre: Preprocess, normalizeFirst = false): Float32Array {
    return tf.tidy(() => {
      const rgb = new Int32Array(img.width * img.height * 3);
      for (let p = 0; p < img.width * img.height; p++) {
        rgb[p * 3] = img.data[p * 4]!;
        rgb[p * 3 + 1] = img.data[p * 4 + 1]!;
        rgb[p * 3 + 2] = img.data[p * 4 + 2]!;
      }
      // like tf.browser.fromPixels: int32 [h, w, 3]
      const t = tf.tensor3d(rgb, [img.height, img.width, 3], 'int32');
      const out = normalizeFirst
        ? tf.image.resizeBilinear(tf.add(tf.mul(tf.cast(t, 'float32'), pre.scale), pre.offset) as tf.Tensor3D, [h, w], pre.alignCorners)
        : tf.add(tf.mul(tf.image.resizeBilinear(t, [h, w], pre.alignCorners), pre.scale), pre.offset);
      return out.dataSync() as Float32Array;
    });
  }

  const cases: [number, number, number, number][] = [
    // inH, inW, outH, outW
    [37, 53, 224, 224],
    [300, 451, 224, 224],
    [451, 300, 128, 160],
    [7, 5, 3, 4],
    [1, 1, 5, 3],
    [5, 1, 1, 1],
    [2, 3, 1, 7],
    [224, 224, 224, 224],
    [97, 61, 97, 62],
    [1000, 3, 17, 2],
  ];
  const pres: [number, number][] = [
    [1 / 127.5, -1],
    [1 / 255, 0],
    [1, 0],
    [0.017, -2.1],
  ];

  let seed = 0;
  for (const [inH, inW, outH, outW] of cases) {
    for (const alignCorners of [true, false]) {
      it(`${inH}x${inW} -> ${outH}x${outW}, alignCorners=${alignCorners}`, () => {
        for (const [scale, offset] of pres) {
          const img = randomRgba(inW, inH, ++seed);
          const pre: Preprocess = { resize: 'bilinear', alignCorners, scale, offset };
          const ours = imageToInput(img, outH, outW, pre);
          const ref = tfReference(img, outH, outW, pre);
          expect(ours).toBeInstanceOf(Float32Array);
          expect(ours.length).toBe(outH * outW * 3);
          let maxDiff = 0;
          let mismatches = 0;
          for (let i = 0; i < ref.length; i++) {
            const d = Math.abs(ours[i]! - ref[i]!);
            if (d !== 0) mismatches++;
            maxDiff = Math.max(maxDiff, d);
          }
          expect(maxDiff).toBeLessThanOrEqual(1e-5);
          expect(mismatches).toBe(0); // bit-exact
        }
      });
    }
  }

  it('also a Uint8ClampedArray source; alpha is ignored', () => {
    const img = randomRgba(31, 29, 99);
    const opaque = { ...img, data: new Uint8ClampedArray(img.data) };
    for (let i = 3; i < opaque.data.length; i += 4) opaque.data[i] = 255;
    const pre: Preprocess = { resize: 'bilinear', alignCorners: true, scale: 1 / 127.5, offset: -1 };
    expect(Array.from(imageToInput(opaque, 20, 40, pre))).toEqual(Array.from(imageToInput(img, 20, 40, pre)));
    expect(Array.from(imageToInput(img, 20, 40, pre))).toEqual(Array.from(tfReference(img, 20, 40, pre)));
  });

  it('normalize-then-resize (tfjs-models/nsfwjs order) differs only by float rounding', async () => {
    const img = await decodeImage(sample('cat-photo.jpg'));
    for (const alignCorners of [true, false]) {
      const pre: Preprocess = { resize: 'bilinear', alignCorners, scale: 1 / 127.5, offset: -1 };
      const ours = imageToInput(img, 224, 224, pre);
      const ref = tfReference(img, 224, 224, pre, true);
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i]! - ref[i]!));
      expect(maxDiff).toBeLessThan(1e-6);
    }
  });

  it('real photo, 224x224 exact', async () => {
    const img = await decodeImage(sample('rocket-photo.jpg'));
    const pre: Preprocess = { resize: 'bilinear', alignCorners: true, scale: 1 / 127.5, offset: -1 };
    const ref = tfReference(img, 224, 224, pre);
    expect(Array.from(imageToInput(img, 224, 224, pre))).toEqual(Array.from(ref));
  });
});

describe('imageToInput: validation and speed', () => {
  const pre: Preprocess = { resize: 'bilinear', alignCorners: false, scale: 1, offset: 0 };
  const good = randomRgba(4, 3, 1);

  it('bad image dimensions or data -> InputError', () => {
    const bad: unknown[] = [
      { ...good, width: 0 },
      { ...good, width: 3 },
      { ...good, height: 2.5 },
      { ...good, width: -4 },
      { ...good, width: NaN },
      { ...good, data: new Uint8Array(4 * 3 * 3) },
      { ...good, data: new Float32Array(4 * 3 * 4) },
      { ...good, data: Array.from(good.data) },
      null,
      'image',
    ];
    for (const img of bad) expect(() => imageToInput(img as RgbaImage, 2, 2, pre)).toThrow(InputError);
  });

  it('bad output size or preprocess -> InputError', () => {
    for (const [h, w] of [
      [0, 2],
      [2, 0],
      [1.5, 2],
      [2, -1],
      [NaN, 2],
      [100000, 100000],
    ]) {
      expect(() => imageToInput(good, h!, w!, pre)).toThrow(InputError);
    }
    const badPre: unknown[] = [
      { ...pre, resize: 'nearest' },
      { ...pre, scale: NaN },
      { ...pre, offset: Infinity },
      { ...pre, alignCorners: 'yes' },
      null,
    ];
    for (const p of badPre) expect(() => imageToInput(good, 2, 2, p as Preprocess)).toThrow(InputError);
  });

});
