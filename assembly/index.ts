// The module's exports: every kernel in its x86 and ARM variants, and its scalar twin. Memory is the host's to lay out,
// from heap_base() up; no kernel allocates or keeps state between calls.

export { gemm_4x8_f32_x86, gemm_6x8_f32_arm, gemm_f32_scalar, gemm_packed_bytes } from "./pointwise";
export {
  dwconv3x3_row_nhwc_f32_x86, dwconv3x3_row_nhwc_f32_arm, dwconv3x3_row_nhwc_f32_scalar,
  dwconv3x3_nhwc_f32_x86, dwconv3x3_nhwc_f32_arm, dwconv3x3_nhwc_f32_scalar,
} from "./depthwise";
export {
  conv3x3_nhwc_f32_x86, conv3x3_nhwc_f32_arm, conv3x3_nhwc_f32_scalar, conv3x3_scratch_floats,
} from "./conv";
export {
  ibottleneck3x3_nhwc_f32_x86, ibottleneck3x3_nhwc_f32_arm, ibottleneck3x3_nhwc_f32_scalar,
  ibottleneck_scratch_floats, ibottleneck_min_cap,
  stem3x3_block_nhwc_f32_x86, stem3x3_block_nhwc_f32_arm, stem3x3_block_nhwc_f32_scalar, stem_block_scratch_floats,
} from "./inverted_residual";
export { clamp_f32, clamp_f32_scalar, add_f32, add_f32_scalar, softmax_f32 } from "./activation";
export { global_avgpool_nhwc_f32, global_avgpool_nhwc_f32_scalar } from "./pool";

/** First byte of linear memory not used by the module's own static data. */
export function heap_base(): usize {
  return __heap_base;
}

/** 1 when built with relaxed SIMD (fused multiply-add), so the host can report which build runs. */
export function build_is_relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

/** The sign of inf - inf: negative NaN on x86, positive on ARM. Used to pick kernel variants. */
// Takes inf from the host so the optimizer cannot fold the subtraction at build time.
export function probe_nan_sign(inf1: f32): i32 {
  const inf = f32x4.splat(inf1);
  const d = f32x4.sub(inf, inf);
  return i32x4.extract_lane(d, 0) < 0 ? 1 : 0;
}

export { peak_madd_f32 } from "./probe";
export { pack_gemm_f32, pack_gemm_u8, pack_dw3x3_f32, pack_dw3x3_u8, first_nonfinite_f32, dequantize_u8_f32, fold_factors_f64 } from "./pack";
