// Browser image objects for classify(): ImageData, HTMLImageElement, ImageBitmap,
// HTMLCanvasElement and OffscreenCanvas become RGBA pixels ({ data, width, height }) by
// drawing them at their natural size on an (Offscreen)Canvas 2D context and reading it back.
// Resizing is left to imageToInput, so a browser image goes through exactly the same
// bilinear resize and normalisation as a decoded file.
//
// Everything is feature-tested (`typeof X !== 'undefined'`), so this file is safe to import
// in Node, where none of these types exist and isBrowserImage() is always false.

import { ImageDecodeError, InputError } from './errors.js';
import { MAX_IMAGE_PIXELS, type RgbaImage } from './image.js';

/**
 * The DOM type named K where the DOM lib is loaded, `never` otherwise. The public types
 * use this so that a Node-only TypeScript project (no "DOM" in its `lib`) still
 * type-checks this package's declarations.
 */
type Dom<K extends string> = typeof globalThis extends { [P in K]: { prototype: infer T } } ? T : never;

/** Browser image objects classify() accepts (where the DOM exists). */
export type BrowserImage =
  | Dom<'ImageData'>
  | Dom<'HTMLImageElement'>
  | Dom<'ImageBitmap'>
  | Dom<'HTMLCanvasElement'>
  | Dom<'OffscreenCanvas'>;

type Source = ImageData | HTMLImageElement | ImageBitmap | HTMLCanvasElement | OffscreenCanvas;

const has = (name: string): boolean => typeof (globalThis as Record<string, unknown>)[name] === 'function';

function is<T>(x: unknown, name: string): x is T {
  return has(name) && x instanceof ((globalThis as Record<string, unknown>)[name] as new () => T);
}

/** True for an ImageData, HTMLImageElement, ImageBitmap, HTMLCanvasElement or OffscreenCanvas. */
export function isBrowserImage(x: unknown): x is BrowserImage {
  if (x === null || typeof x !== 'object') return false;
  return is(x, 'ImageData') || is(x, 'HTMLImageElement') || is(x, 'ImageBitmap')
    || is(x, 'HTMLCanvasElement') || is(x, 'OffscreenCanvas');
}

/**
 * The RGBA pixels of a browser image, in sRGB, at its natural size. ImageData is used as it
 * is (no copy). An <img> that has not finished loading is waited for (img.decode()); a
 * broken one rejects with ImageDecodeError. Empty or closed images and images over
 * MAX_IMAGE_PIXELS reject with InputError.
 *
 * Pixels go through a canvas, which stores them with premultiplied alpha: fully opaque
 * pixels come back exactly, but transparent ones come back with their color scaled by
 * alpha (black where alpha is 0), unlike decodeImage(), which keeps the stored color.
 */
export async function browserImageToRgba(image: BrowserImage): Promise<RgbaImage> {
  const img = image as Source;
  if (is<ImageData>(img, 'ImageData')) return img;
  let width: number;
  let height: number;
  if (is<HTMLImageElement>(img, 'HTMLImageElement')) {
    if (!img.complete || img.naturalWidth === 0) {
      try {
        await img.decode();
      } catch (e) {
        throw new ImageDecodeError(`the <img> could not be decoded (${img.currentSrc || img.src || 'no src'}): ${(e as Error).message}`);
      }
    }
    width = img.naturalWidth;
    height = img.naturalHeight;
  } else {
    width = img.width;
    height = img.height;
  }
  if (!(width > 0 && height > 0)) {
    throw new InputError(`the image is empty (${width} x ${height}): not loaded, closed or zero-sized`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new InputError(`the image is too large: ${width} x ${height} exceeds ${MAX_IMAGE_PIXELS} pixels`);
  }
  const ctx = context2d(width, height);
  ctx.drawImage(img as CanvasImageSource, 0, 0, width, height);
  const data = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' });
  return { data: data.data, width, height };
}

type Ctx = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

/** A 2D context of the given size: OffscreenCanvas where there is one (also in workers). */
function context2d(width: number, height: number): Ctx {
  const options: CanvasRenderingContext2DSettings = { willReadFrequently: true, colorSpace: 'srgb', alpha: true };
  let ctx: Ctx | null = null;
  if (has('OffscreenCanvas')) {
    ctx = new OffscreenCanvas(width, height).getContext('2d', options);
  } else if (typeof document !== 'undefined') {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    ctx = canvas.getContext('2d', options);
  }
  if (!ctx) throw new InputError('cannot read the image: no 2D canvas context is available here');
  return ctx;
}
