// Every failure a user can cause has its own class, so callers can `instanceof` it
// instead of parsing messages. All extend MobileNetWasmError.

export class MobileNetWasmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The bytes are not a model this library can read: wrong magic, version, truncated, bad JSON, bad tensor table. */
export class ModelFormatError extends MobileNetWasmError {}

/** The stored checksum does not match the file's contents. */
export class ChecksumError extends ModelFormatError {}

/** The model is well-formed but uses something unsupported (operator, kernel size, padding...). */
export class UnsupportedModelError extends MobileNetWasmError {}

/** A run() input has the wrong type, length or contains NaN/Infinity. */
export class InputError extends MobileNetWasmError {}

/** An image could not be decoded or is outside the accepted limits. */
export class ImageDecodeError extends MobileNetWasmError {}

/** The model was used after dispose(). */
export class DisposedError extends MobileNetWasmError {}

/** The runtime cannot run here (no WebAssembly SIMD) or wasm memory could not be obtained. */
export class EnvironmentError extends MobileNetWasmError {}

/** The plan needs more memory than the configured cap or than WebAssembly can provide. */
export class OutOfMemoryError extends MobileNetWasmError {}

/**
 * Runs f so that only this library's typed errors escape: anything else thrown while reading a
 * hostile structure (a 20,000-deep array overflowing the stack inside a String() call, say)
 * becomes a ModelFormatError.
 */
export function typedErrors<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof MobileNetWasmError) throw e;
    throw new ModelFormatError(`malformed model: ${e instanceof Error ? e.message : 'unreadable value'}`);
  }
}
