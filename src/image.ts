// Image decoding (JPEG, PNG) and the preprocessing the models were trained with:
// bilinear resize exactly as TF.js's `tf.image.resizeBilinear` (CPU kernel), then
// x * scale + offset, producing an NHWC float32 RGB tensor.
//
// No `node:` imports here: the browser build will reuse this file. The decoders are pure
// JS that runs in browsers too (jpeg-js; fflate + fast-png for PNG) and are loaded with a
// dynamic import() on first use, so importing the library does not pay for them.

import type { Preprocess } from './desc.js';
import { EnvironmentError, ImageDecodeError, InputError } from './errors.js';
import { applyOrientation, jpegOrientation } from './exif.js';
import { crc32 } from './format.js';

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
 * 32-bit DCT coefficients per component; PNG decoding holds the decompressed scanlines a
 * few times over, up to 8 bytes per pixel each for 16-bit RGBA), so servers handling
 * untrusted uploads may want a lower `maxPixels`.
 */
export const MAX_IMAGE_PIXELS = 50_000_000;

export interface DecodeImageOptions {
  /** Refuse images with more than this many pixels (default MAX_IMAGE_PIXELS). */
  maxPixels?: number;
}

// ---------------------------------------------------------------------------------------
// Codecs, loaded on first use (import() is cached by the module loader; the promise is
// cached here so concurrent first calls share it, and dropped on failure so a later call
// can retry).

type JpegJs = typeof import('jpeg-js');
type FastPng = typeof import('fast-png');
type Fflate = typeof import('fflate');

let jpegJs: Promise<JpegJs> | null = null;
let pngCodec: Promise<{ fastPng: FastPng; fflate: Fflate }> | null = null;

function codecLoadError(what: string, e: unknown): EnvironmentError {
  return new EnvironmentError(`cannot load the ${what} decoder: ${errorMessage(e)}`);
}

function loadJpegJs(): Promise<JpegJs> {
  jpegJs ??= import('jpeg-js').then(
    // jpeg-js is CommonJS: Node exposes module.exports as `default`, bundlers may not.
    (m) => ((m as { default?: JpegJs }).default ?? m) as JpegJs,
    (e: unknown) => {
      jpegJs = null;
      throw codecLoadError('JPEG (jpeg-js)', e);
    },
  );
  return jpegJs;
}

function loadPngCodec(): Promise<{ fastPng: FastPng; fflate: Fflate }> {
  pngCodec ??= Promise.all([import('fast-png'), import('fflate')]).then(
    ([fastPng, fflate]) => ({ fastPng, fflate }),
    (e: unknown) => {
      pngCodec = null;
      throw codecLoadError('PNG (fast-png, fflate)', e);
    },
  );
  return pngCodec;
}

// ---------------------------------------------------------------------------------------

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
 *   components. Arithmetic-coded, lossless, hierarchical and 12-bit JPEGs are refused, and
 *   so, before decoding, are files whose scans hold less data than the frame needs (under
 *   2 bits per 8x8 block, 1 if progressive), with more than one frame, sampling factors
 *   outside 1..4, or scans making over 256 passes over the blocks. EXIF orientation is
 *   applied (src/exif.ts), as browsers do.
 * - PNG (fflate inflates, fast-png unfilters): every color type, bit depth and interlace
 *   method; greyscale and palette become RGBA, 16-bit samples are scaled to 8 bits as
 *   round(v * 255 / 65535), 1/2/4-bit likewise. Gamma and ICC profiles are ignored (as
 *   TF.js / libpng decoding does by default). The image data must decompress to exactly
 *   the size the header implies and match its Adler-32 checksum, otherwise the file is
 *   refused (a truncated or corrupt stream never yields pixels); decompression stops as
 *   soon as it exceeds that size, so a "zip bomb" cannot allocate more than the header
 *   allows.
 *
 * Alpha is returned but the models ignore it (`imageToInput` reads only R, G, B, as
 * nsfwjs does): a transparent pixel contributes its stored RGB, not a background color.
 * That includes color-key transparency (tRNS in greyscale/RGB PNGs): matching pixels get
 * alpha 0 and keep their stored color.
 *
 * The decoders are loaded with a dynamic import() on the first JPEG / PNG decoded.
 * The pixel limit (`maxPixels`, default MAX_IMAGE_PIXELS) is checked against the size in
 * the header before decoding. Every failure rejects with `ImageDecodeError`, except an
 * invalid `maxPixels` option (a caller bug: `InputError`) and a decoder module that
 * cannot be loaded (`EnvironmentError`).
 */
export async function decodeImage(bytes: Uint8Array, options?: DecodeImageOptions): Promise<RgbaImage> {
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

interface JpegComponent {
  h: number;
  v: number;
  /** Blocks jpeg-js decodes for it in a scan of this component alone (no MCU padding). */
  blocks: number;
}

interface JpegFrame {
  marker: number;
  precision: number;
  width: number;
  height: number;
  /** Component count as declared. */
  components: number;
  /** By component id, as jpeg-js keys them (a repeated id replaces the earlier one). */
  comps: Map<number, JpegComponent>;
  /** A sampling factor outside 1..4 was found (the walk stopped there). */
  badSampling: boolean;
  /** MCUs in an interleaved scan. */
  mcus: number;
  /** Blocks jpeg-js allocates (MCU-padded), and the unpadded blocks every valid file codes. */
  allocatedBlocks: number;
  blocks: number;
}

/** What jpeg-js will decode, found by walking the marker structure the way its parser does. */
interface JpegLayout {
  /** The first frame header (SOFn), or null when there is none where jpeg-js looks. */
  frame: JpegFrame | null;
  /** Frame headers seen (jpeg-js refuses more than one, but only after decoding them all). */
  frames: number;
  /** Bytes of entropy-coded data over all scans (up to each scan's ending marker). */
  entropyBytes: number;
  /** Blocks jpeg-js visits over all scans. */
  scanBlocks: number;
}

/**
 * Walk the marker segments as jpeg-js 0.4's parser does (same tolerances: fill bytes, FF00,
 * SOF/SOS/DRI read at fixed offsets whatever their length field, its one-byte resync and
 * malformed-APP recovery), so the checks below see the frame and scans jpeg-js will decode.
 * Stops where jpeg-js would throw.
 */
function scanJpeg(b: Uint8Array): JpegLayout {
  const layout: JpegLayout = { frame: null, frames: 0, entropyBytes: 0, scanBlocks: 0 };
  const u16 = (at: number): number => ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
  let malformedApp = false;
  let o = 2;
  while (o < b.length) {
    const m = u16(o);
    o += 2;
    if (m === 0xffd9) break; // EOI
    if (m === 0xff00) continue;
    if (m === 0xffff) {
      if (b[o] !== 0xff) o--; // fill byte
      continue;
    }
    if ((m >= 0xffe0 && m <= 0xffef) || m === 0xfffe) {
      o += 2 + Math.max(0, Math.min(u16(o) - 2, b.length - o - 2)); // APPn, COM
      continue;
    }
    if (m === 0xffdb) {
      const end = o + u16(o); // DQT: tables until the segment end, possibly overrunning it
      for (o += 2; o < end; ) {
        const p = (b[o++] ?? 0) >> 4;
        if (p > 1) return layout;
        o += p ? 128 : 64;
      }
      continue;
    }
    if (m === 0xffc4) {
      const len = u16(o); // DHT: tables until the segment end, possibly overrunning it
      o += 2;
      for (let i = 2; i < len; ) {
        let sum = 0;
        for (let j = 1; j <= 16; j++) sum += b[o + j] as number; // NaN past the end, as in jpeg-js
        o += 17;
        if (Number.isNaN(sum)) break;
        o += sum;
        i += 17 + sum;
      }
      continue;
    }
    if (m === 0xffdd || m === 0xffdc) {
      o += 4; // DRI, DNL
      continue;
    }
    if (m >= 0xffc0 && m <= 0xffcf && m !== 0xffc8 && m !== 0xffcc) {
      if (++layout.frames > 1) return layout;
      layout.frame = readJpegFrame(b, o, m & 0xff);
      if (m > 0xffc2 || !layout.frame.mcus) return layout; // jpeg-js decodes SOF0-2 only
      o += 8 + 3 * layout.frame.components;
      continue;
    }
    if (m === 0xffda) {
      const f = layout.frame;
      if (!f) return layout;
      const n = b[o + 2] ?? 0;
      let blocks = 0;
      let hv = 0;
      for (let i = 0; i < n; i++) {
        const c = f.comps.get(b[o + 3 + 2 * i] ?? -1);
        if (!c) return layout;
        blocks += c.blocks;
        hv += c.h * c.v;
      }
      o += 3 + 2 * n + 3;
      layout.scanBlocks += n === 1 ? blocks : f.mcus * Math.max(1, hv);
      // The scan's data runs to the first marker other than RSTn (jpeg-js throws at any other).
      const start = o;
      while (o < b.length && !(b[o] === 0xff && b[o + 1] !== 0 && ((b[o + 1] ?? 0) & 0xf8) !== 0xd0)) o++;
      layout.entropyBytes += o - start;
      continue;
    }
    // jpeg-js's recoveries: a marker one byte back, or one APP segment missing its 0xFF
    if (b[o - 3] === 0xff && b[o - 2]! >= 0xc0 && b[o - 2]! <= 0xfe) {
      o -= 3;
      continue;
    }
    if ((m === 0xe0 || m === 0xe1) && !malformedApp) {
      malformedApp = true;
      const next = u16(o);
      o += 2;
      if (b[o + next - 2] === 0xff) {
        o += next - 2;
        continue;
      }
    }
    return layout; // jpeg-js: unknown marker
  }
  return layout;
}

/** The frame header whose marker is at o - 2, with jpeg-js's block geometry. */
function readJpegFrame(b: Uint8Array, o: number, marker: number): JpegFrame {
  const height = ((b[o + 3] ?? 0) << 8) | (b[o + 4] ?? 0);
  const width = ((b[o + 5] ?? 0) << 8) | (b[o + 6] ?? 0);
  const components = b[o + 7] ?? 0;
  const frame: JpegFrame = {
    marker,
    precision: b[o + 2] ?? 0,
    width,
    height,
    components,
    comps: new Map(),
    badSampling: false,
    mcus: 0,
    allocatedBlocks: 0,
    blocks: 0,
  };
  if (marker > 0xc2) return frame;
  for (let i = 0; i < components; i++) {
    const hv = b[o + 9 + 3 * i] ?? 0;
    const h = hv >> 4;
    const v = hv & 15;
    // The standard allows 1..4 (libjpeg refuses others); jpeg-js takes up to 15, padding
    // every MCU to as many blocks.
    if (h < 1 || h > 4 || v < 1 || v > 4) {
      frame.badSampling = true;
      return frame;
    }
    frame.comps.set(b[o + 8 + 3 * i]!, { h, v, blocks: 0 });
  }
  if (!width || !height || !frame.comps.size) return frame;
  let maxH = 1;
  let maxV = 1;
  for (const c of frame.comps.values()) {
    maxH = Math.max(maxH, c.h);
    maxV = Math.max(maxV, c.v);
  }
  // as jpeg-js's prepareComponents
  const mcusPerLine = Math.ceil(width / 8 / maxH);
  const mcusPerColumn = Math.ceil(height / 8 / maxV);
  frame.mcus = mcusPerLine * mcusPerColumn;
  for (const c of frame.comps.values()) {
    c.blocks = Math.ceil((Math.ceil(width / 8) * c.h) / maxH) * Math.ceil((Math.ceil(height / 8) * c.v) / maxV);
    frame.blocks += c.blocks;
    frame.allocatedBlocks += frame.mcus * c.h * c.v;
  }
  return frame;
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

/**
 * Most passes over the frame's blocks that the scans may make. Real progressive files make
 * about 10 (libjpeg's default script: 10 scans); nvImageCodec caps scans at 256 for this reason.
 */
const JPEG_MAX_SCAN_PASSES = 256;

async function decodeJpeg(bytes: Uint8Array, maxPixels: number): Promise<RgbaImage> {
  const { frame, frames, entropyBytes, scanBlocks } = scanJpeg(bytes);
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
    // jpeg-js refuses these too, but only after allocating and decoding everything.
    if (frames > 1) throw new ImageDecodeError('unsupported JPEG: more than one frame header (SOFn marker)');
    if (frame.badSampling) throw new ImageDecodeError('invalid JPEG: a sampling factor is outside 1..4');
    // Every 8x8 block of every component is coded at least once, in at least 2 bits in a
    // sequential scan (a DC and an AC code) or 1 in a progressive DC scan. Less data is a
    // truncated or crafted file; jpeg-js would allocate and fill the whole claimed frame
    // before finding out (seconds and gigabytes for a few kilobytes).
    const bitsPerBlock = frame.marker === 0xc2 ? 1 : 2;
    if (entropyBytes * 8 < frame.blocks * bitsPerBlock) {
      throw new ImageDecodeError(
        `JPEG is truncated or corrupt: ${entropyBytes} bytes of image data cannot code a ${frame.width} x ${frame.height} image (${frame.blocks} blocks of at least ${bitsPerBlock} bit${bitsPerBlock > 1 ? 's' : ''} each)`,
      );
    }
    // An end-of-band run skips up to 32767 blocks for a few bits, but jpeg-js still visits
    // every block of every scan: many near-empty progressive scans cost time, not bytes.
    if (scanBlocks > JPEG_MAX_SCAN_PASSES * frame.allocatedBlocks) {
      throw new ImageDecodeError(
        `unsupported JPEG: its scans make more than ${JPEG_MAX_SCAN_PASSES} passes over the image's ${frame.allocatedBlocks} blocks`,
      );
    }
  }
  const jpeg = await loadJpegJs();
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
  // Phone photos store pixels as the sensor read them and a rotation in EXIF; browsers apply it
  // when they draw an <img>, so do we.
  return applyOrientation({ data, width, height }, jpegOrientation(bytes));
}


// ---------------------------------------------------------------------------------------
// PNG
//
// Everything that can be checked without decompressing is checked first (signature, IHDR
// and its limits, chunk structure and CRCs, palette, zlib header), before the codec is
// even loaded. The image data is then inflated here with fflate's streaming inflater,
// fed in small slices and stopped as soon as the output exceeds the size IHDR implies;
// the result must have exactly that size and match the stream's Adler-32. fast-png then
// only unfilters: it is given a minimal PNG built here (IHDR, the verified scanlines in
// stored zlib blocks, IEND). This works around what fast-png 8 does with a file as is:
// it inflates IDAT (and iCCP) without any output limit, never verifies the Adler-32,
// zero-fills the rest of the image when the stream is short, throws on harmless tRNS
// variants, and its Adam7 path mis-handles 1/2/4-bit images. Interlaced images are
// therefore decoded pass by pass, each pass as a small non-interlaced image.

function readU32BE(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU32BE(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Allowed bit depths per PNG color type. */
const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/** Samples per pixel per PNG color type (palette: one index). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

/** What the chunk walk collects besides the structure checks. */
interface PngChunks {
  /** The concatenated IDAT data: one zlib stream. */
  zlib: Uint8Array;
  /** Color type 3: RGBA for each of the 256 possible indices (PLTE + tRNS alpha). */
  palette: Uint8Array | null;
  /** Color types 0 and 2: the tRNS color key (raw sample values: grey, or r, g, b). */
  key: number[] | null;
}

function adler32(b: Uint8Array): number {
  let a = 1;
  let s = 0;
  for (let i = 0; i < b.length; ) {
    // reduce every 1024 bytes: the sums stay small integers (below 2^30)
    const end = Math.min(i + 1024, b.length);
    for (; i < end; i++) {
      a += b[i]!;
      s += a;
    }
    a %= 65521;
    s %= 65521;
  }
  return ((s << 16) | a) >>> 0;
}

function isChunkTypeByte(x: number): boolean {
  return (x >= 0x41 && x <= 0x5a) || (x >= 0x61 && x <= 0x7a);
}

function readPngHeader(bytes: Uint8Array, maxPixels: number): PngHeader {
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
  return { width, height, depth, colorType, interlaced: bytes[28] === 1 };
}

/**
 * Walk the chunks after the signature: every chunk must fit in the file, have a valid
 * type and CRC, and IEND must be present (bytes after it are ignored, as browsers do).
 * Collects the IDAT data, PLTE and tRNS; all other chunks (iCCP, text, ...) are skipped.
 */
function readPngChunks(b: Uint8Array, colorType: number): PngChunks {
  let o = 8;
  const idat: Uint8Array[] = [];
  let idatLength = 0;
  let plte: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  for (;;) {
    if (o >= b.length) throw new ImageDecodeError('invalid PNG: the file is truncated (no IEND chunk)');
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
    if (crc32(b.subarray(o + 4, o + 8 + len)) !== readU32BE(b, o + 8 + len)) {
      throw new ImageDecodeError(`invalid PNG: CRC mismatch in the ${type} chunk at byte ${o} (corrupt file)`);
    }
    const data = b.subarray(o + 8, o + 8 + len);
    o += 12 + len;
    if (type === 'IEND') break;
    if (type === 'IDAT') {
      idat.push(data);
      idatLength += len;
    } else if (idat.length === 0) {
      // PLTE and tRNS only count before the image data; the first of each wins.
      if (type === 'PLTE' && !plte) plte = data;
      // A palette's tRNS must follow its PLTE (libpng ignores it otherwise).
      if (type === 'tRNS' && !trns && (colorType !== 3 || plte)) trns = data;
    }
  }
  if (idat.length === 0) throw new ImageDecodeError('invalid PNG: no image data (IDAT chunk)');
  let zlib = idat[0]!;
  if (idat.length > 1) {
    zlib = new Uint8Array(idatLength);
    let at = 0;
    for (const d of idat) {
      zlib.set(d, at);
      at += d.length;
    }
  }
  checkZlibHeader(zlib);

  // Invalid or misplaced tRNS is ignored, as libpng does ("benign" errors).
  let palette: Uint8Array | null = null;
  let key: number[] | null = null;
  if (colorType === 3) {
    if (!plte) throw new ImageDecodeError('invalid PNG: palette image without a palette (PLTE chunk)');
    const entries = plte.length / 3;
    if (!Number.isInteger(entries) || entries < 1 || entries > 256) {
      throw new ImageDecodeError(`invalid PNG: the palette (PLTE chunk) has an invalid length of ${plte.length} bytes`);
    }
    // Indices without a palette entry come out opaque black, as with libpng.
    palette = new Uint8Array(256 * 4);
    for (let i = 0; i < 256; i++) palette[i * 4 + 3] = 255;
    for (let i = 0; i < entries; i++) palette.set(plte.subarray(i * 3, i * 3 + 3), i * 4);
    if (trns && trns.length <= entries) for (let i = 0; i < trns.length; i++) palette[i * 4 + 3] = trns[i]!;
  } else if (trns && colorType === 0 && trns.length === 2) {
    key = [(trns[0]! << 8) | trns[1]!];
  } else if (trns && colorType === 2 && trns.length === 6) {
    key = [(trns[0]! << 8) | trns[1]!, (trns[2]! << 8) | trns[3]!, (trns[4]! << 8) | trns[5]!];
  }
  return { zlib, palette, key };
}

/**
 * Cheap sanity check of the zlib stream header (compression method 8, window <= 32K,
 * header checksum, no preset dictionary) and of the first deflate block type, so that
 * IDAT data that is not zlib at all gets a clear message before anything is inflated.
 */
function checkZlibHeader(z: Uint8Array): void {
  const cmf = z[0];
  const flg = z[1];
  const first = z[2];
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

/** A reduced image: one Adam7 pass, or the whole image when not interlaced. */
interface PngPass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  width: number;
  height: number;
  /** Bytes of its filtered scanlines (each with its filter-type byte). */
  size: number;
}

const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

function pngPasses(h: PngHeader): PngPass[] {
  const bitsPerPixel = h.depth * PNG_CHANNELS[h.colorType]!;
  const pass = (x0: number, y0: number, dx: number, dy: number): PngPass => {
    const width = Math.max(0, Math.ceil((h.width - x0) / dx));
    const height = Math.max(0, Math.ceil((h.height - y0) / dy));
    const size = width && height ? height * (1 + Math.ceil((width * bitsPerPixel) / 8)) : 0;
    return { x0, y0, dx, dy, width, height, size };
  };
  if (!h.interlaced) return [pass(0, 0, 1, 1)];
  return ADAM7.map(([x0, y0, dx, dy]) => pass(x0, y0, dx, dy)).filter((p) => p.size > 0);
}

/**
 * Inflate the IDAT zlib stream into exactly `size` bytes. The input goes in in slices of
 * `step` bytes, and one slice can produce at most ~1032 x its length (deflate's maximum
 * ratio) before the output count is checked, so a stream producing more than `size`
 * bytes is stopped after at most max(~17 MB, ~size) bytes of extra output. (Smaller
 * slices bound that tighter but make the first, not yet JIT-compiled, decode slower.)
 */
function inflatePngData(fflate: Fflate, zlib: Uint8Array, size: number, h: PngHeader): Uint8Array {
  if (zlib.length < 2 + 2 + 4) throw new ImageDecodeError('invalid PNG: the image data is truncated (zlib stream too short)');
  const out = new Uint8Array(size);
  let n = 0;
  const inflater = new fflate.Inflate((chunk) => {
    if (n + chunk.length > size) {
      throw new ImageDecodeError(
        `invalid PNG: the image data decompresses to more than the ${size} bytes a ${h.width} x ${h.height} image needs (corrupt file or decompression bomb)`,
      );
    }
    out.set(chunk, n);
    n += chunk.length;
  });
  const deflate = zlib.subarray(2, zlib.length - 4);
  const step = Math.min(1 << 20, Math.max(16384, Math.floor(size / 1024)));
  try {
    for (let i = 0; i < deflate.length; i += step) inflater.push(deflate.subarray(i, i + step), false);
    inflater.push(new Uint8Array(0), true); // throws "unexpected EOF" unless the stream ended
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    if ((e as { code?: unknown }).code === 0) {
      throw new ImageDecodeError('invalid PNG: the image data is truncated (unexpected end of the zlib stream)');
    }
    throw new ImageDecodeError(`invalid PNG: corrupt image data (zlib: ${errorMessage(e)})`);
  }
  if (n !== size) {
    throw new ImageDecodeError(
      `invalid PNG: the image data is truncated or corrupt: it decompresses to ${n} bytes, a ${h.width} x ${h.height} image needs ${size}`,
    );
  }
  if (adler32(out) !== readU32BE(zlib, zlib.length - 4)) {
    throw new ImageDecodeError('invalid PNG: checksum mismatch in the image data (corrupt zlib stream)');
  }
  return out;
}

/**
 * A minimal non-interlaced PNG holding already-verified scanlines, for fast-png to
 * unfilter: signature, IHDR, one IDAT with a zlib stream of stored (uncompressed) blocks,
 * IEND. CRCs and the Adler-32 are left zero: fast-png (checkCrc: false) and fflate never
 * read them.
 */
function scanlinesPng(width: number, height: number, depth: number, colorType: number, lines: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(lines.length / 65535));
  const zlibLength = 2 + lines.length + 5 * blocks + 4;
  const png = new Uint8Array(8 + 25 + 12 + zlibLength + 12);
  png.set(PNG_SIGNATURE, 0);
  writeU32BE(png, 8, 13);
  png.set(ascii('IHDR'), 12);
  writeU32BE(png, 16, width);
  writeU32BE(png, 20, height);
  png[24] = depth;
  png[25] = colorType; // compression, filter and interlace method: 0
  let o = 33;
  writeU32BE(png, o, zlibLength);
  png.set(ascii('IDAT'), o + 4);
  o += 8;
  png[o++] = 0x78; // deflate, 32K window
  png[o++] = 0x01; // no dictionary; (0x7801 % 31) === 0
  for (let i = 0; i < lines.length; i += 65535) {
    const len = Math.min(65535, lines.length - i);
    png[o] = i + len >= lines.length ? 1 : 0; // BFINAL, BTYPE 00 (stored)
    png[o + 1] = len & 0xff;
    png[o + 2] = len >>> 8;
    png[o + 3] = ~len & 0xff;
    png[o + 4] = (~len >>> 8) & 0xff;
    png.set(lines.subarray(i, i + len), o + 5);
    o += 5 + len;
  }
  o += 4 + 4; // Adler-32, IDAT CRC
  writeU32BE(png, o, 0);
  png.set(ascii('IEND'), o + 4);
  return png;
}

let scale16: Uint8Array | null = null;

/** 8-bit value of each sample value at `depth`: v * 255 / (2^depth - 1), rounded. */
function sampleTo8(depth: number): Uint8Array {
  if (depth === 16) {
    if (!scale16) {
      scale16 = new Uint8Array(65536);
      // round(v / 257), exact: v + 128.5 is never a multiple of 257
      for (let v = 0; v < 65536; v++) scale16[v] = ((v + 128) / 257) | 0;
    }
    return scale16;
  }
  const max = (1 << depth) - 1;
  return Uint8Array.from({ length: 256 }, (_, v) => (v <= max ? (v * 255) / max : 0));
}

/**
 * Write one unfiltered reduced image (samples as fast-png returns them: 16-bit values in
 * a Uint16Array, 8-bit in a Uint8Array, 1/2/4-bit packed rows) into the RGBA output.
 */
function writeRgba(
  samples: Uint8Array | Uint16Array,
  p: PngPass,
  h: PngHeader,
  chunks: PngChunks,
  out: Uint8Array,
): void {
  const { depth, colorType } = h;
  const n = PNG_CHANNELS[colorType]!;
  const to8 = sampleTo8(depth);
  const pal = chunks.palette ?? new Uint8Array(0);
  // color key (raw sample values); -1 never matches
  const k0 = chunks.key?.[0] ?? -1;
  const k1 = chunks.key?.[1] ?? -1;
  const k2 = chunks.key?.[2] ?? -1;
  const packed = depth < 8;
  const line = packed ? new Uint8Array(p.width) : null;
  const mask = (1 << depth) - 1;
  const stride = packed ? Math.ceil((p.width * depth) / 8) : p.width * n;
  const step = p.dx * 4;
  for (let y = 0; y < p.height; y++) {
    let s: Uint8Array | Uint16Array = samples;
    let i = y * stride;
    if (line) {
      for (let x = 0; x < p.width; x++) {
        const bit = x * depth;
        line[x] = (samples[i + (bit >> 3)]! >> (8 - depth - (bit & 7))) & mask;
      }
      s = line;
      i = 0;
    }
    let o = ((p.y0 + y * p.dy) * h.width + p.x0) * 4;
    switch (colorType) {
      case 0:
        for (let x = 0; x < p.width; x++, o += step) {
          const v = s[i++]!;
          const g = to8[v]!;
          out[o] = g;
          out[o + 1] = g;
          out[o + 2] = g;
          out[o + 3] = v === k0 ? 0 : 255;
        }
        break;
      case 2:
        for (let x = 0; x < p.width; x++, o += step, i += 3) {
          const r = s[i]!;
          const g = s[i + 1]!;
          const b = s[i + 2]!;
          out[o] = to8[r]!;
          out[o + 1] = to8[g]!;
          out[o + 2] = to8[b]!;
          out[o + 3] = r === k0 && g === k1 && b === k2 ? 0 : 255;
        }
        break;
      case 3:
        for (let x = 0; x < p.width; x++, o += step) {
          const c = s[i++]! * 4;
          out[o] = pal[c]!;
          out[o + 1] = pal[c + 1]!;
          out[o + 2] = pal[c + 2]!;
          out[o + 3] = pal[c + 3]!;
        }
        break;
      case 4:
        for (let x = 0; x < p.width; x++, o += step, i += 2) {
          const g = to8[s[i]!]!;
          out[o] = g;
          out[o + 1] = g;
          out[o + 2] = g;
          out[o + 3] = to8[s[i + 1]!]!;
        }
        break;
      default: // 6
        for (let x = 0; x < p.width; x++, o += step, i += 4) {
          out[o] = to8[s[i]!]!;
          out[o + 1] = to8[s[i + 1]!]!;
          out[o + 2] = to8[s[i + 2]!]!;
          out[o + 3] = to8[s[i + 3]!]!;
        }
    }
  }
}

async function decodePng(bytes: Uint8Array, maxPixels: number): Promise<RgbaImage> {
  const h = readPngHeader(bytes, maxPixels);
  const chunks = readPngChunks(bytes, h.colorType);
  const passes = pngPasses(h);
  const size = passes.reduce((sum, p) => sum + p.size, 0);
  const { fastPng, fflate } = await loadPngCodec();
  try {
    const lines = inflatePngData(fflate, chunks.zlib, size, h);
    const n = PNG_CHANNELS[h.colorType]!;
    let out: Uint8Array | null = null;
    let at = 0;
    for (const p of passes) {
      const png = fastPng.decode(scanlinesPng(p.width, p.height, h.depth, h.colorType, lines.subarray(at, at + p.size)), {
        checkCrc: false,
      });
      at += p.size;
      const d = png.data;
      const expected = h.depth < 8 ? p.height * Math.ceil((p.width * h.depth) / 8) : p.width * p.height * n;
      if (
        png.width !== p.width ||
        png.height !== p.height ||
        png.channels !== n ||
        !(h.depth === 16 ? d instanceof Uint16Array : d instanceof Uint8Array) ||
        d.length !== expected
      ) {
        throw new ImageDecodeError('invalid PNG: decoder returned an unexpected pixel buffer');
      }
      // 8-bit RGBA, not interlaced: fast-png's fresh buffer already is the result.
      if (!h.interlaced && h.colorType === 6 && h.depth === 8) return { data: d as Uint8Array, width: h.width, height: h.height };
      out ??= new Uint8Array(h.width * h.height * 4);
      writeRgba(d as Uint8Array | Uint16Array, p, h, chunks, out);
    }
    return { data: out!, width: h.width, height: h.height };
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    if (e instanceof RangeError && /allocation|array buffer|array length/i.test(e.message)) {
      throw new ImageDecodeError(`PNG is too large to decode in the available memory (${e.message})`);
    }
    // fast-png: "Unsupported filter: 7" and the like
    throw new ImageDecodeError(`invalid PNG: ${errorMessage(e)}`);
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
