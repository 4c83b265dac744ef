// src/exif.ts: reading the EXIF Orientation of a JPEG and applying it to RGBA pixels.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applyOrientation, jpegOrientation } from '../src/exif.js';
import { decodeImage, type RgbaImage } from '../src/index.js';
import { buildFlatJpeg, exifSegment } from '../scripts/fuzz.mjs';

/** A W x H image whose pixel (x, y) is [x, y, 7, 255]. */
function labelled(W: number, H: number): RgbaImage {
  const data = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data.set([x, y, 7, 255], (y * W + x) * 4);
  return { data, width: W, height: H };
}

/** Rows of stored coordinates "x,y" as shown. */
function grid(img: RgbaImage): string[] {
  const rows: string[] = [];
  for (let y = 0; y < img.height; y++) {
    const row: string[] = [];
    for (let x = 0; x < img.width; x++) row.push(`${img.data[(y * img.width + x) * 4]},${img.data[(y * img.width + x) * 4 + 1]}`);
    rows.push(row.join(' '));
  }
  return rows;
}

function withApp1(payload: Uint8Array): Uint8Array {
  const f = buildFlatJpeg({ width: 8, height: 8, comps: 1, value: () => 128 });
  const seg = new Uint8Array(4 + payload.length);
  seg.set([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 255]);
  seg.set(payload, 4);
  const out = new Uint8Array(f.length + seg.length);
  out.set(f.subarray(0, 2));
  out.set(seg, 2);
  out.set(f.subarray(2), 2 + seg.length);
  return out;
}

describe('jpegOrientation', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('reads orientation %i, little- and big-endian', (o) => {
    expect(jpegOrientation(withApp1(exifSegment(o, false)))).toBe(o);
    expect(jpegOrientation(withApp1(exifSegment(o, true)))).toBe(o);
  });

  it('is 1 without EXIF, for out-of-range values, other APP1 payloads and non-JPEGs', () => {
    expect(jpegOrientation(buildFlatJpeg({ width: 8, height: 8, comps: 1, value: () => 1 }))).toBe(1);
    expect(jpegOrientation(new Uint8Array(readFileSync('samples/cat-photo.jpg')))).toBe(1);
    expect(jpegOrientation(withApp1(exifSegment(0, false)))).toBe(1);
    expect(jpegOrientation(withApp1(exifSegment(9, true)))).toBe(1);
    expect(jpegOrientation(withApp1(new TextEncoder().encode('http://ns.adobe.com/xap/1.0/\0<x/>')))).toBe(1);
    expect(jpegOrientation(new Uint8Array([0x89, 0x50, 0x4e, 0x47]))).toBe(1);
    expect(jpegOrientation(new Uint8Array(0))).toBe(1);
  });

  it('never throws on damaged files: truncated anywhere, or any byte changed', () => {
    const file = withApp1(exifSegment(6, false));
    for (let n = 0; n <= file.length; n++) expect([1, 6]).toContain(jpegOrientation(file.subarray(0, n)));
    fc.assert(
      fc.property(fc.nat(file.length - 1), fc.nat(255), fc.uint8Array({ maxLength: 8 }), (at, v, tail) => {
        const b = new Uint8Array([...file, ...tail]);
        b[at] = v;
        const o = jpegOrientation(b);
        return Number.isInteger(o) && o >= 1 && o <= 8;
      }),
      { seed: 1, numRuns: 2000 },
    );
  });
});

describe('applyOrientation', () => {
  const img = labelled(3, 2); // stored:  0,0 1,0 2,0 / 0,1 1,1 2,1
  it.each([
    [1, ['0,0 1,0 2,0', '0,1 1,1 2,1']],
    [2, ['2,0 1,0 0,0', '2,1 1,1 0,1']],
    [3, ['2,1 1,1 0,1', '2,0 1,0 0,0']],
    [4, ['0,1 1,1 2,1', '0,0 1,0 2,0']],
    [5, ['0,0 0,1', '1,0 1,1', '2,0 2,1']],
    [6, ['0,1 0,0', '1,1 1,0', '2,1 2,0']],
    [7, ['2,1 2,0', '1,1 1,0', '0,1 0,0']],
    [8, ['2,0 2,1', '1,0 1,1', '0,0 0,1']],
  ])('orientation %i', (o, rows) => {
    const out = applyOrientation(img, o as number);
    expect(grid(out)).toEqual(rows);
    expect(out.data.length).toBe(img.data.length);
  });

  it('leaves the input alone, returns it for 1 and invalid values, and inverts as expected', () => {
    const copy = img.data.slice();
    for (const o of [2, 3, 4, 5, 6, 7, 8]) applyOrientation(img, o);
    expect(img.data).toEqual(copy);
    for (const o of [1, 0, 9, 1.5, NaN]) expect(applyOrientation(img, o)).toBe(img);
    const big = labelled(5, 4);
    const same = (a: RgbaImage, b: RgbaImage) => a.width === b.width && a.height === b.height && a.data.every((v, i) => v === b.data[i]);
    expect(same(applyOrientation(applyOrientation(big, 6), 8), big)).toBe(true);
    expect(same(applyOrientation(applyOrientation(big, 3), 3), big)).toBe(true);
    for (const o of [2, 4, 5, 7]) expect(same(applyOrientation(applyOrientation(big, o), o), big)).toBe(true);
  });

  it('a decoded JPEG with orientation 6 (rotate 90 clockwise) comes out upright', async () => {
    // Stored 16 x 8: left block dark, right block light. Shown rotated: 8 x 16, dark on top.
    const file = buildFlatJpeg({ width: 16, height: 8, comps: 1, exif: 6, value: (_c: number, bx: number) => (bx ? 220 : 30) });
    // decodeImage applies the orientation itself; applying it to the stored pixels by hand
    // (orientation 1 afterwards: a no-op) must agree.
    const shown = await decodeImage(file);
    expect(applyOrientation(shown, 1)).toEqual(shown);
    expect(jpegOrientation(file)).toBe(6);
    expect([shown.width, shown.height]).toEqual([8, 16]);
    expect(shown.data[0]).toBeLessThan(40);
    expect(shown.data[(15 * 8 + 7) * 4]).toBeGreaterThan(210);
  });
});
