// Global average pooling, NHWC: [HW x C] -> [C].

/** out[c] = mean over the HW pixels of inp[., c]. Sums in pixel order (same as the twin). */
export function global_avgpool_nhwc_f32(inp: usize, HW: i32, C: i32, out: usize): void {
  const pix = <usize>C << 2;
  const inv = <f32>1 / <f32>HW;
  const vinv = f32x4.splat(inv);
  let c = 0;
  for (; c + 4 <= C; c += 4) {
    const cb = <usize>c << 2;
    let acc = f32x4.splat(0);
    let p = inp + cb;
    for (let i = 0; i < HW; i++) {
      acc = f32x4.add(acc, v128.load(p));
      p += pix;
    }
    v128.store(out + cb, f32x4.mul(acc, vinv));
  }
  for (; c < C; c++) {
    const cb = <usize>c << 2;
    let acc: f32 = 0;
    for (let i = 0; i < HW; i++) acc += load<f32>(inp + <usize>i * pix + cb);
    store<f32>(out + cb, acc * inv);
  }
}

/** Scalar twin of global_avgpool_nhwc_f32. */
export function global_avgpool_nhwc_f32_scalar(inp: usize, HW: i32, C: i32, out: usize): void {
  const pix = <usize>C << 2;
  const inv = <f32>1 / <f32>HW;
  for (let c = 0; c < C; c++) {
    const cb = <usize>c << 2;
    let acc: f32 = 0;
    for (let i = 0; i < HW; i++) acc += load<f32>(inp + <usize>i * pix + cb);
    store<f32>(out + cb, acc * inv);
  }
}
