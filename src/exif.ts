// EXIF orientation of JPEG files: read the Orientation tag (0x0112) of the APP1 "Exif"
// segment and apply it to decoded RGBA pixels, as browsers do when they display a photo
// (and as nsfwjs in a browser therefore sees it, through an <img>). TF.js's Node decoder
// (tf.node.decodeImage) does not apply it.
//
// decodeImage() applies it to every JPEG (image.ts decodeJpeg). The pixel count is unchanged,
// so the size limits checked before decoding still hold.
// Browser-safe: no node: imports.

import type { RgbaImage } from './image.js';

/** EXIF orientation: 1 = as stored; 2-8 = mirrored and/or rotated (TIFF 6.0 / EXIF 2.3). */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/**
 * The Orientation of a JPEG file's first APP1 Exif segment before the image data, or 1 when
 * there is none or it cannot be read. Never throws: damaged metadata means "as stored".
 */
export function jpegOrientation(bytes: Uint8Array): Orientation {
  if (!(bytes instanceof Uint8Array) || bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 1;
  let o = 2;
  while (o + 4 <= bytes.length) {
    if (bytes[o] !== 0xff) return 1;
    const m = bytes[o + 1]!;
    if (m === 0xff) {
      o += 1; // fill byte
      continue;
    }
    if (m === 0x01 || m === 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
      o += 2; // standalone markers
      continue;
    }
    if (m === 0xda || m === 0xd9) return 1; // image data or end: no more metadata
    const len = (bytes[o + 2]! << 8) | bytes[o + 3]!;
    if (len < 2 || o + 2 + len > bytes.length) return 1;
    if (m === 0xe1) {
      const found = exifOrientation(bytes.subarray(o + 4, o + 2 + len));
      if (found) return found;
    }
    o += 2 + len;
  }
  return 1;
}

/** Orientation from an APP1 payload ("Exif\0\0" + TIFF), 0 when absent or unreadable. */
function exifOrientation(seg: Uint8Array): Orientation | 0 {
  const EXIF = [0x45, 0x78, 0x69, 0x66, 0, 0];
  if (seg.length < 6 + 8 || EXIF.some((b, i) => seg[i] !== b)) return 0;
  const tiff = seg.subarray(6);
  const dv = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const order = dv.getUint16(0, false);
  const le = order === 0x4949; // "II": little-endian; "MM": big-endian
  if (!le && order !== 0x4d4d) return 0;
  if (dv.getUint16(2, le) !== 42) return 0;
  const ifd = dv.getUint32(4, le);
  if (ifd < 8 || ifd + 2 > tiff.length) return 0;
  const entries = dv.getUint16(ifd, le);
  for (let i = 0; i < entries; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > tiff.length) return 0;
    if (dv.getUint16(e, le) !== 0x0112) continue;
    const type = dv.getUint16(e + 2, le);
    if (dv.getUint32(e + 4, le) !== 1) return 0;
    // SHORT as the standard says; LONG as some writers do.
    const v = type === 3 ? dv.getUint16(e + 8, le) : type === 4 ? dv.getUint32(e + 8, le) : 0;
    return v >= 1 && v <= 8 ? (v as Orientation) : 0;
  }
  return 0;
}

/**
 * The image as it should be displayed: `img` (as stored) mirrored and/or rotated per EXIF
 * orientation. Orientations 5-8 swap width and height. 1 (or any value outside 2-8) returns
 * `img` itself; otherwise a new Uint8Array is returned and `img` is not modified.
 */
export function applyOrientation(img: RgbaImage, orientation: number): RgbaImage {
  if (!Number.isInteger(orientation) || orientation < 2 || orientation > 8) return img;
  const W = img.width;
  const H = img.height;
  const src = img.data;
  const swap = orientation >= 5;
  const w = swap ? H : W;
  const h = swap ? W : H;
  const out = new Uint8Array(W * H * 4);
  // Stored pixel (sx, sy) shown at (x, y): sx = ax*x + bx*y + cx, sy = ay*x + by*y + cy.
  const [ax, bx, cx, ay, by, cy] = (
    {
      2: [-1, 0, W - 1, 0, 1, 0], // mirror left-right
      3: [-1, 0, W - 1, 0, -1, H - 1], // rotate 180
      4: [1, 0, 0, 0, -1, H - 1], // mirror top-bottom
      5: [0, 1, 0, 1, 0, 0], // transpose
      6: [0, 1, 0, -1, 0, H - 1], // rotate 90 clockwise
      7: [0, -1, W - 1, -1, 0, H - 1], // transverse
      8: [0, -1, W - 1, 1, 0, 0], // rotate 90 counter-clockwise
    } as Record<number, number[]>
  )[orientation]!;
  let o = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = ((ay * x + by * y + cy) * W + (ax * x + bx * y + cx)) * 4;
      out[o] = src[s]!;
      out[o + 1] = src[s + 1]!;
      out[o + 2] = src[s + 2]!;
      out[o + 3] = src[s + 3]!;
      o += 4;
    }
  }
  return { data: out, width: w, height: h };
}
