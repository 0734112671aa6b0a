package profiles

import (
	"strings"

	"clustertx/internal/yamlx"
	"clustertx/quality"

	"go.yaml.in/yaml/v3"
)

// The quality: key (issue 17) on a profile or a rule: encode each file at
// the encoder's quality level that just meets a target score, found by
// encoding samples (package quality). A clustertx key:
//
//	quality:                 # or the short form: quality: vmaf=95
//	  metric: vmaf           # ssim, vmaf or xpsnr
//	  target: 95             # SSIM as the filter's value (0.98), VMAF 0-100, XPSNR in dB
//	  min: 18                # bounds on the encoder's level (-crf, -cq, -q:v…);
//	  max: 34                #   default: the encoder's whole range
//	  max_size: 90%          # largest output in % of the source (default 100)
//	  samples: 4             # samples per round (default 4)
//	  sample_seconds: 10     # length of each (default 10; shorter on short films)
//
// A rule's quality: replaces its profile's.

var qualityKeys = []string{"metric", "target", "min", "max", "max_size", "samples", "sample_seconds"}

// decodeQuality decodes a quality: key: a mapping, or the short form
// METRIC=VALUE.
func decodeQuality(d *yamlx.Decoder, n *yaml.Node, path string) (*quality.Config, error) {
	if n.Kind == yaml.ScalarNode {
		m, v, err := quality.ParseTarget(n.Value)
		if err != nil {
			return nil, d.Errorf(n, path, "expected a mapping (metric:, target:, …) or METRIC=VALUE such as vmaf=95 or ssim=0.98: %v", err)
		}
		return quality.Default(m, v), nil
	}
	pairs, err := d.Mapping(n, path)
	if err != nil {
		return nil, err
	}
	c := quality.Default("", 0)
	var at *yaml.Node = n
	for _, kv := range pairs {
		var err error
		switch kv.Key {
		case "metric":
			var s string
			s, err = d.String(kv.Value, kv.Path)
			c.Metric = quality.Metric(strings.ToLower(strings.TrimSpace(s)))
			if err == nil && c.Metric != quality.SSIM && c.Metric != quality.VMAF && c.Metric != quality.XPSNR {
				err = d.Errorf(kv.Value, kv.Path, "unknown metric %q (ssim, vmaf or xpsnr)%s", s, prefixHint(suggest(c.Metric.Label(), []string{"ssim", "vmaf", "xpsnr"})))
			}
		case "target":
			c.Target, err = d.Float(kv.Value, kv.Path)
			at = kv.Value
		case "min", "max":
			var v float64
			if v, err = d.Float(kv.Value, kv.Path); err == nil {
				if kv.Key == "min" {
					c.Min = &v
				} else {
					c.Max = &v
				}
			}
		case "max_size":
			var s string
			if s, err = d.String(kv.Value, kv.Path); err == nil {
				n := &yaml.Node{Kind: yaml.ScalarNode, Value: strings.TrimSuffix(strings.TrimSpace(s), "%"), Line: kv.Value.Line, Column: kv.Value.Column}
				c.MaxSizePct, err = d.Float(n, kv.Path)
			}
		case "samples":
			c.Samples, err = d.Int(kv.Value, kv.Path)
		case "sample_seconds":
			var s string
			if s, err = d.String(kv.Value, kv.Path); err == nil {
				if c.SampleSeconds, err = ParseSeconds(s); err != nil {
					err = d.Errorf(kv.Value, kv.Path, "%v", err)
				}
			}
		default:
			err = d.Unknown(kv, suggest(kv.Key, qualityKeys))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := c.Check(); err != nil {
		return nil, d.Errorf(at, path, "%v", err)
	}
	return c, nil
}

func prefixHint(h string) string {
	if h == "" {
		return ""
	}
	return "; " + h
}
