// Image decoding (JPEG, PNG) and the preprocessing the models were trained with:
// bilinear resize exactly as TF.js's `tf.image.resizeBilinear` (CPU kernel), then
// x * scale + offset, producing an NHWC float32 RGB tensor.
//
// No `node:` imports here: the browser build will reuse this file. The decoders are
// pure JS (jpeg-js, pngjs), but pngjs needs Node's `Buffer` and `zlib` (see decodePng).

import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import type { Preprocess } from './desc.js';
import { ImageDecodeError, InputError } from './errors.js';

/** A decoded image: RGBA, 4 bytes per pixel, row-major, top row first. */
export interface RgbaImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/**
 * Largest image (width x height) `decodeImage` accepts by default: 50 megapixels.
 * The limit is checked from the file header, before any pixel memory is allocated.
 * Decoding near the limit needs well over a gigabyte of temporary memory (jpeg-js keeps
 * 32-bit DCT coefficients per component; pngjs keeps several copies of the bitmap), so
 * servers handling untrusted uploads may want a lower `maxPixels`.
 */
export const MAX_IMAGE_PIXELS = 50_000_000;

export interface DecodeImageOptions {
  /** Refuse images with more than this many pixels (default MAX_IMAGE_PIXELS). */
  maxPixels?: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function ascii(s: string): number[] {
  return Array.from(s, (ch) => ch.charCodeAt(0));
}

/** Names formats we recognise but do not decode, for a clearer error message. */
function unsupportedFormatName(b: Uint8Array): string | null {
  if (startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))) return 'GIF';
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WEBP'), 8)) return 'WebP';
  if (startsWith(b, ascii('BM'))) return 'BMP';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  if (startsWith(b, ascii('ftyp'), 4)) {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (brand.startsWith('avi')) return 'AVIF';
    if (/^(hei|hev|mif|msf)/.test(brand)) return 'HEIC/HEIF';
    return `ISO media (${JSON.stringify(brand)})`;
  }
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00])) return 'ICO';
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])) return 'JPEG XL';
  if (startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20])) return 'JPEG 2000';
  if (startsWith(b, ascii('<svg')) || startsWith(b, ascii('<?xml'))) return 'SVG/XML';
  return null;
}

function hexPrefix(b: Uint8Array): string {
  return Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function checkDimensions(kind: string, width: number, height: number, maxPixels: number): void {
  if (width === 0 || height === 0) {
    throw new ImageDecodeError(`${kind} has zero size (${width} x ${height})`);
  }
  if (width * height > maxPixels) {
    throw new ImageDecodeError(
      `${kind} is too large: ${width} x ${height} = ${width * height} pixels exceeds the limit of ${maxPixels} pixels`,
    );
  }
}

/**
 * Decode a JPEG or PNG file (format sniffed from its first bytes) to 8-bit RGBA.
 *
 * - JPEG (jpeg-js): baseline, extended and progressive Huffman-coded, 8-bit precision,
 *   1 (greyscale), 3 (YCbCr/RGB) or 4 (Adobe CMYK/YCCK, converted naively, no ICC)
 *   components. Arithmetic-coded, lossless, hierarchical and 12-bit JPEGs are refused.
 *   EXIF orientation is NOT applied: pixels come out as stored.
 * - PNG (pngjs): every color type and bit depth; greyscale and palette become RGBA,
 *   16-bit samples are scaled to 8 bits as round(v * 255 / 65535), 1/2/4-bit likewise.
 *   Gamma and ICC profiles are ignored (as TF.js / libpng decoding does by default).
 *
 * Alpha is returned but the models ignore it (`imageToInput` reads only R, G, B, as
 * nsfwjs does): a transparent pixel contributes its stored RGB, not a background color.
 * That includes color-key transparency (tRNS in greyscale/RGB PNGs): pngjs zeroes those
 * pixels and this function restores their stored color.
 *
 * The pixel limit (`maxPixels`, default MAX_IMAGE_PIXELS) is checked against the size in
 * the header before decoding. Every failure throws `ImageDecodeError` (an invalid
 * `maxPixels` option is a caller bug and throws `InputError`).
 */
export function decodeImage(bytes: Uint8Array, options?: DecodeImageOptions): RgbaImage {
  const maxPixels = options?.maxPixels ?? MAX_IMAGE_PIXELS;
  if (typeof maxPixels !== 'number' || !Number.isInteger(maxPixels) || maxPixels <= 0) {
    throw new InputError(`maxPixels must be a positive integer, got ${String(maxPixels)}`);
  }
  if (!(bytes instanceof Uint8Array)) {
    throw new ImageDecodeError(`expected the image file contents as a Uint8Array, got ${describe(bytes)}`);
  }
  if (bytes.length === 0) throw new ImageDecodeError('cannot decode an empty file (0 bytes)');

  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return decodeJpeg(bytes, maxPixels);
  if (startsWith(bytes, PNG_SIGNATURE)) return decodePng(bytes, maxPixels);

  const other = unsupportedFormatName(bytes);
  if (other) throw new ImageDecodeError(`unsupported image format ${other}; only JPEG and PNG can be decoded`);
  throw new ImageDecodeError(
    `unrecognized image format (first bytes: ${hexPrefix(bytes)}); only JPEG and PNG can be decoded`,
  );
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'object';
  return typeof x;
}

// ---------------------------------------------------------------------------------------
// JPEG

interface JpegFrame {
  marker: number;
  precision: number;
  width: number;
  height: number;
  components: number;
}

/**
 * Walk the marker segments up to the first SOFn and read the frame header. Returns null
 * when none is found before SOS/EOI or the end (jpeg-js then reports the corruption).
 */
function scanJpegFrame(b: Uint8Array): JpegFrame | null {
  let o = 2;
  while (o + 1 < b.length) {
    if (b[o] !== 0xff) return null;
    const m = b[o + 1]!;
    if (m === 0xff) {
      o += 1; // fill byte
      continue;
    }
    if (m === 0x01 || m === 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
      o += 2; // standalone markers
      continue;
    }
    if (m === 0xd9 || m === 0xda) return null; // EOI / SOS before any frame header
    if (o + 3 >= b.length) return null;
    const len = (b[o + 2]! << 8) | b[o + 3]!;
    if (len < 2) return null;
    const isSof = m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
    if (isSof) {
      if (o + 9 >= b.length) return null;
      return {
        marker: m,
        precision: b[o + 4]!,
        height: (b[o + 5]! << 8) | b[o + 6]!,
        width: (b[o + 7]! << 8) | b[o + 8]!,
        components: b[o + 9]!,
      };
    }
    o += 2 + len;
  }
  return null;
}

const JPEG_PROCESS: Record<number, string> = {
  0xc3: 'lossless',
  0xc5: 'hierarchical',
  0xc6: 'hierarchical progressive',
  0xc7: 'hierarchical lossless',
  0xc9: 'arithmetic-coded',
  0xca: 'arithmetic-coded progressive',
  0xcb: 'arithmetic-coded lossless',
  0xcd: 'hierarchical arithmetic-coded',
  0xce: 'hierarchical arithmetic-coded progressive',
  0xcf: 'hierarchical arithmetic-coded lossless',
};

function decodeJpeg(bytes: Uint8Array, maxPixels: number): RgbaImage {
  const frame = scanJpegFrame(bytes);
  if (frame) {
    const process = JPEG_PROCESS[frame.marker];
    if (process) throw new ImageDecodeError(`unsupported JPEG: ${process} JPEGs cannot be decoded`);
    if (frame.precision !== 8) {
      throw new ImageDecodeError(`unsupported JPEG: ${frame.precision}-bit samples (only 8-bit is supported)`);
    }
    if (frame.height === 0 && frame.width !== 0) {
      throw new ImageDecodeError('unsupported JPEG: height defined by a DNL marker');
    }
    checkDimensions('JPEG', frame.width, frame.height, maxPixels);
    if (frame.components !== 1 && frame.components !== 3 && frame.components !== 4) {
      throw new ImageDecodeError(`unsupported JPEG: ${frame.components} color components`);
    }
  }
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      // jpeg-js checks both before allocating pixel memory. The memory cap is generous
      // enough for any image within maxPixels (worst case 4 components: ~28 bytes/pixel)
      // and stops pathological streams (e.g. 1-pixel-wide images padded to whole MCUs).
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: Math.ceil((maxPixels * 40) / (1024 * 1024)) + 64,
    });
  } catch (e) {
    const msg = errorMessage(e);
    if (/maxResolutionInMP/.test(msg)) {
      throw new ImageDecodeError(`JPEG is too large: more than the limit of ${maxPixels} pixels`);
    }
    if (/maxMemoryUsageInMB/.test(msg)) {
      throw new ImageDecodeError(`JPEG needs too much memory to decode (${msg})`);
    }
    if (/marker was not found|unexpected marker|Cannot (read|set) properties of undefined/.test(msg)) {
      throw new ImageDecodeError(`invalid JPEG: the file is truncated or corrupt (${msg})`);
    }
    throw new ImageDecodeError(`invalid JPEG: ${msg}`);
  }
  const { width, height, data } = decoded;
  checkDimensions('JPEG', width, height, maxPixels);
  if (!(data instanceof Uint8Array) || data.length !== width * height * 4) {
    throw new ImageDecodeError('invalid JPEG: decoder returned an unexpected pixel buffer');
  }
  return { data, width, height };
}

// ---------------------------------------------------------------------------------------
// PNG

function readU32BE(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Allowed bit depths per PNG color type. */
const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

let crcTable: Uint32Array | null = null;

function crc32(b: Uint8Array, start: number, end: number): number {
  let t = crcTable;
  if (!t) {
    t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    crcTable = t;
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function isChunkTypeByte(x: number): boolean {
  return (x >= 0x41 && x <= 0x5a) || (x >= 0x61 && x <= 0x7a);
}

/**
 * Walk the chunks after the signature: every chunk must fit in the file, have a valid
 * type and CRC, and IEND must be present. Returns the offset just past IEND.
 */
function checkPngChunks(b: Uint8Array): number {
  let o = 8;
  // First 3 bytes of the concatenated IDAT data: zlib CMF, FLG and the first block header.
  const zhead: number[] = [];
  let sawIdat = false;
  while (o < b.length) {
    if (o + 8 > b.length) throw new ImageDecodeError('invalid PNG: the file is truncated (incomplete chunk header)');
    const len = readU32BE(b, o);
    const t0 = b[o + 4]!;
    const t1 = b[o + 5]!;
    const t2 = b[o + 6]!;
    const t3 = b[o + 7]!;
    if (!isChunkTypeByte(t0) || !isChunkTypeByte(t1) || !isChunkTypeByte(t2) || !isChunkTypeByte(t3)) {
      throw new ImageDecodeError(`invalid PNG: corrupt chunk header at byte ${o}`);
    }
    const type = String.fromCharCode(t0, t1, t2, t3);
    if (len > 0x7fffffff) throw new ImageDecodeError(`invalid PNG: corrupt length in ${type} chunk`);
    if (o + 12 + len > b.length) {
      throw new ImageDecodeError(`invalid PNG: the file is truncated (inside the ${type} chunk at byte ${o})`);
    }
    if (crc32(b, o + 4, o + 8 + len) !== readU32BE(b, o + 8 + len)) {
      throw new ImageDecodeError(`invalid PNG: CRC mismatch in the ${type} chunk at byte ${o} (corrupt file)`);
    }
    if (type === 'IDAT') {
      sawIdat = true;
      for (let i = 0; i < len && zhead.length < 3; i++) zhead.push(b[o + 8 + i]!);
    }
    o += 12 + len;
    if (type === 'IEND') {
      if (!sawIdat) throw new ImageDecodeError('invalid PNG: no image data (IDAT chunk)');
      checkZlibHeader(zhead);
      return o;
    }
  }
  throw new ImageDecodeError('invalid PNG: the file is truncated (no IEND chunk)');
}

/**
 * Cheap sanity check of the zlib stream header. pngjs 7's synchronous inflate (the path
 * for non-interlaced images) does not surface zlib errors on current Node versions: it
 * returns its whole uninitialised output buffer instead. Structure and CRC checks catch
 * truncated and randomly damaged files; this catches IDAT data that is not zlib at all.
 * A well-formed header followed by a bad or too short deflate stream is NOT detected.
 */
function checkZlibHeader(h: number[]): void {
  const [cmf, flg, first] = h;
  if (
    cmf === undefined ||
    flg === undefined ||
    first === undefined ||
    (cmf & 0x0f) !== 8 ||
    cmf >> 4 > 7 ||
    ((cmf << 8) | flg) % 31 !== 0 ||
    (flg & 0x20) !== 0 ||
    ((first >> 1) & 3) === 3
  ) {
    throw new ImageDecodeError('invalid PNG: the image data is not a valid zlib stream');
  }
}

/**
 * pngjs needs a Node `Buffer` (it calls readUInt32BE etc. on slices) and Node's `zlib`
 * (inflateSync). Both exist in Node; a browser build must substitute a decoder.
 */
function decodePng(bytes: Uint8Array, maxPixels: number): RgbaImage {
  // IHDR must be the first chunk: length 13, type "IHDR", then width and height.
  if (bytes.length < 8 + 8 + 13 + 4) {
    throw new ImageDecodeError(`invalid PNG: the file is truncated (${bytes.length} bytes, no complete IHDR)`);
  }
  if (readU32BE(bytes, 8) !== 13 || !startsWith(bytes, ascii('IHDR'), 12)) {
    throw new ImageDecodeError('invalid PNG: the first chunk is not a valid IHDR');
  }
  const width = readU32BE(bytes, 16);
  const height = readU32BE(bytes, 20);
  checkDimensions('PNG', width, height, maxPixels);
  const depth = bytes[24]!;
  const colorType = bytes[25]!;
  const depths = PNG_DEPTHS[colorType];
  if (!depths) throw new ImageDecodeError(`invalid PNG: unknown color type ${colorType}`);
  if (!depths.includes(depth)) {
    throw new ImageDecodeError(`invalid PNG: bit depth ${depth} is not allowed for color type ${colorType}`);
  }
  if (bytes[26] !== 0 || bytes[27] !== 0 || (bytes[28] !== 0 && bytes[28] !== 1)) {
    throw new ImageDecodeError('invalid PNG: unknown compression, filter or interlace method');
  }
  // Structure and CRCs are checked here (pngjs's own CRC check is then turned off): its
  // sync reader reports most corruptions as "unrecognised content at end of stream".
  const end = checkPngChunks(bytes);

  if (typeof Buffer === 'undefined') {
    throw new ImageDecodeError('PNG decoding is not available in this environment (pngjs needs Node.js Buffer and zlib)');
  }
  let png: {
    width: number;
    height: number;
    depth?: number;
    colorType?: number;
    data: Uint8Array;
    transColor?: number[];
  };
  try {
    // Bytes after IEND are ignored (as browsers do).
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, end);
    png = pngjs.PNG.sync.read(buf, { checkCRC: false }) as unknown as typeof png;
  } catch (e) {
    const msg = errorMessage(e);
    if (/read requests waitng on finished stream|unexpected end of file/i.test(msg)) {
      throw new ImageDecodeError(`invalid PNG: the file is truncated (${msg})`);
    }
    throw new ImageDecodeError(`invalid PNG: ${msg}`);
  }
  const d = png.data;
  if (png.width !== width || png.height !== height || !(d instanceof Uint8Array) || d.length !== width * height * 4) {
    throw new ImageDecodeError('invalid PNG: decoder returned an unexpected pixel buffer');
  }
  const data = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if ((png.colorType === 0 || png.colorType === 2) && png.transColor && png.transColor.length > 0) {
    restoreColorKey(data, png.transColor, png.depth ?? 8);
  }
  return { data, width, height };
}

/**
 * pngjs sets pixels matching the tRNS color key to (0,0,0,0). Without an alpha channel,
 * alpha 0 can only come from the key, so those pixels get their stored color back
 * (scaled to 8 bits like the others), keeping alpha 0.
 */
function restoreColorKey(data: Uint8Array, key: number[], depth: number): void {
  const max = 2 ** depth - 1;
  const to8 = (v: number): number => (depth === 8 ? v : Math.floor((v * 255) / max + 0.5));
  const r = to8(key[0]!);
  const g = key.length >= 3 ? to8(key[1]!) : r;
  const b = key.length >= 3 ? to8(key[2]!) : r;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) {
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Preprocessing

function isPositiveInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

/**
 * Resize `img` to height x width and normalize, exactly as
 * `tf.image.resizeBilinear(rgb, [height, width], pre.alignCorners).mul(pre.scale).add(pre.offset)`
 * on TF.js's CPU backend (halfPixelCenters=false). Only R, G, B are read; alpha is ignored.
 *
 * Arithmetic follows the TF.js kernel: source coordinate = ratio * dst where ratio is
 * (in-1)/(out-1) with alignCorners (and out > 1) or in/out otherwise; floor/ceil clamped
 * to the image; top/bottom/vertical lerps in float64, then the result is rounded to
 * float32, multiplied by float32(scale) and rounded, added to float32(offset) and rounded.
 * Downscaling samples 4 pixels per output (no antialiasing), like TF.js.
 *
 * Returns an NHWC Float32Array of length height * width * 3. Throws `InputError` for
 * invalid dimensions, data length or preprocess parameters.
 */
export function imageToInput(img: RgbaImage, height: number, width: number, pre: Preprocess): Float32Array {
  if (!isPositiveInt(height) || !isPositiveInt(width)) {
    throw new InputError(`output size must be positive integers, got ${String(height)} x ${String(width)}`);
  }
  if (height * width > MAX_IMAGE_PIXELS) {
    throw new InputError(`output size ${height} x ${width} is too large`);
  }
  if (img === null || typeof img !== 'object') throw new InputError('image must be an object { data, width, height }');
  const inW = img.width;
  const inH = img.height;
  if (!isPositiveInt(inW) || !isPositiveInt(inH)) {
    throw new InputError(`image width and height must be positive integers, got ${String(inW)} x ${String(inH)}`);
  }
  const src = img.data;
  if (!(src instanceof Uint8Array) && !(src instanceof Uint8ClampedArray)) {
    throw new InputError(`image data must be a Uint8Array or Uint8ClampedArray, got ${describe(src)}`);
  }
  if (src.length !== inW * inH * 4) {
    throw new InputError(
      `image data has ${src.length} bytes, expected ${inW} x ${inH} x 4 = ${inW * inH * 4} (RGBA)`,
    );
  }
  if (pre === null || typeof pre !== 'object' || pre.resize !== 'bilinear') {
    throw new InputError(`unsupported preprocess resize ${JSON.stringify((pre as Preprocess | null)?.resize)}`);
  }
  if (typeof pre.alignCorners !== 'boolean') throw new InputError('preprocess.alignCorners must be a boolean');
  if (typeof pre.scale !== 'number' || !Number.isFinite(pre.scale) || typeof pre.offset !== 'number' || !Number.isFinite(pre.offset)) {
    throw new InputError('preprocess.scale and preprocess.offset must be finite numbers');
  }

  const align = pre.alignCorners;
  const rowRatio = (align && height > 1 ? inH - 1 : inH) / (align && height > 1 ? height - 1 : height);
  const colRatio = (align && width > 1 ? inW - 1 : inW) / (align && width > 1 ? width - 1 : width);

  // Per output column: byte offsets of the left/right source pixels and the weight.
  const xl = new Int32Array(width);
  const xr = new Int32Array(width);
  const xf = new Float64Array(width);
  for (let c = 0; c < width; c++) {
    const s = colRatio * c;
    const lo = Math.max(0, Math.floor(s));
    xf[c] = s - lo;
    xl[c] = lo * 4;
    xr[c] = Math.min(inW - 1, Math.ceil(s)) * 4;
  }

  const scale = Math.fround(pre.scale);
  const offset = Math.fround(pre.offset);
  const fround = Math.fround;
  const out = new Float32Array(height * width * 3);
  const rowBytes = inW * 4;
  let o = 0;
  for (let r = 0; r < height; r++) {
    const s = rowRatio * r;
    const lo = Math.max(0, Math.floor(s));
    const fy = s - lo;
    const top = lo * rowBytes;
    const bot = Math.min(inH - 1, Math.ceil(s)) * rowBytes;
    for (let c = 0; c < width; c++) {
      const fx = xf[c]!;
      const tl = top + xl[c]!;
      const tr = top + xr[c]!;
      const bl = bot + xl[c]!;
      const br = bot + xr[c]!;
      for (let k = 0; k < 3; k++) {
        const a = src[tl + k]!;
        const b = src[bl + k]!;
        const t = a + (src[tr + k]! - a) * fx;
        const u = b + (src[br + k]! - b) * fx;
        out[o++] = fround(fround(t + (u - t) * fy) * scale) + offset;
      }
    }
  }
  return out;
}
