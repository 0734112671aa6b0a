// Package quality owns the pure parts of quality-targeted encoding: the
// quality: key's settings and their checks, where the samples of a film
// are cut, the search that picks the encoder's quality level from sample
// encodes, the decision (a level, or why the target cannot be met within
// the size cap), the ffmpeg commands that cut a sample and measure an
// encode against it, and the parsers of those measurements. It runs
// nothing: the cluster package runs the commands, locally or on hosts, and
// feeds the measurements back to a Search.
//
// # Levels, scores and the search
//
// A level is the encoder's own quality setting (-crf 24 for libx265, -cq
// for NVENC, -q:v for VideoToolbox; package internal/encoder knows which,
// its range and its direction). A score is the metric's mean over the
// samples, weighted by their length. SSIM is given and reported as the
// filter's value (0.98), but interpolated as decibels, -10·log10(1-SSIM),
// where equal steps of the level make roughly equal steps of the score;
// VMAF and XPSNR (already decibels) are used as they are.
//
// Each round encodes every sample at one level. The first level is the
// profile's own (clamped to the bounds), else the middle of the bounds.
// While the target is not bracketed, the next level is extrapolated from
// the slope of the two nearest observations (a typical slope per metric
// when there is one); once a passing and a failing level bracket it, the
// next is interpolated between them (on the line through them, or on the
// parabola through them and a third observation close by, where the curve
// bends), rounded to the nearest level strictly inside the bracket. The search stops when
// the bracket is one level wide, when a passing level is within the
// metric's tolerance of the target, at a bound that settles it, when a
// failing level is already over the size cap (better levels are only
// bigger), or after MaxRounds.
package quality
