package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
)

// hostsLab writes a config with cluster lab = a local host, a real sshd
// host (streaming), a disabled host and a host whose sshd is stopped, plus
// cluster solo = the local host again.
func hostsLab(t *testing.T) (cfg, kh string) {
	t.Helper()
	testenv.NeedFFmpeg(t)
	freshHome(t)
	up := hoststest.StartSSHD(t, hoststest.Options{})
	dead := hoststest.StartSSHD(t, hoststest.Options{})
	dead.Stop()
	dir := t.TempDir()
	kh = filepath.Join(dir, "known_hosts")
	hoststest.WriteKnownHosts(t, kh, up, dead)
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	host := func(name, typ string, s *hoststest.SSHD, extra string) string {
		return fmt.Sprintf("      %s:\n        type: %s\n        ip: %s\n        port: %d\n        user: %s\n        identity_file: %s\n%s",
			name, typ, s.Host, s.Port, s.User, s.IdentityFile, extra)
	}
	y := "config:\n  ffmpeg: ffmpeg\n  clusters:\n    lab:\n" +
		"      box:\n        type: local\n        ffmpeg: ffmpeg\n" +
		host("nas", "streaming", up, "        working_dir: "+work+"\n") +
		host("off", "mounted", up, "        status: disabled\n") +
		host("gone", "mounted", dead, "") +
		"    solo:\n      box:\n        type: local\n        ffmpeg: ffmpeg\n" +
		"profiles:\n  h264:\n    output_options_video: \"-c:v libx264\"\n    extension: .mkv\n"
	cfg = filepath.Join(dir, "transcode.yml")
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, kh
}

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err := Run(ctx, append([]string{"clustertx"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

// tableRows maps host → fields of the table printed by `clustertx hosts`.
func tableRows(t *testing.T, out string) map[string][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "HOST ") || !strings.Contains(lines[0], "HW ENCODERS") {
		t.Fatalf("no table:\n%s", out)
	}
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			break // the table ends; the encoder variants may follow
		}
		rows[f[0]] = f
	}
	return rows
}

func TestHostsCommandTable(t *testing.T) {
	cfg, kh := hostsLab(t)
	// The brief's form: global -y before `hosts`, the rest after it.
	out, errOut, err := runCLI(t, "-y", cfg, "hosts", "-c", "lab", "--known-hosts", kh, "--ssh-config", "none", "--check-timeout", "30s")
	if Code(err) != ExitIncomplete {
		t.Fatalf("code %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", Code(err), err, ExitIncomplete, out, errOut)
	}
	if !strings.Contains(err.Error(), "1 of 3 enabled hosts down") {
		t.Errorf("error = %v", err)
	}
	rows := tableRows(t, out)
	if len(rows) != 4 {
		t.Fatalf("rows = %v\n%s", rows, out)
	}
	// HOST TYPE ROLE STATUS LATENCY FFMPEG HW CORES LOAD GPU FREE REASON…
	for _, h := range []string{"box", "nas"} {
		r := rows[h][1:] // from TYPE, with ROLE dropped below
		r = append([]string{r[0]}, r[2:]...)
		if r[1] != "up" || r[2] == "-" || r[3] == "-" || r[4] != "none" || r[5] == "-" || r[6] == "-" || r[7] != "none" {
			t.Errorf("%s row = %q\n%s", h, rows[h], out)
		}
	}
	// The cluster has a local host, so by default (mode both) it is a fallback.
	if rows["box"][1] != "local" || rows["box"][2] != "fallback" || rows["box"][10] != "-" {
		t.Errorf("box row = %q", rows["box"])
	}
	if rows["nas"][1] != "streaming" || rows["nas"][2] != "normal" || !strings.HasSuffix(rows["nas"][10], "iB") {
		t.Errorf("nas row (free space of working_dir) = %q", rows["nas"])
	}
	if r := rows["off"]; r[2] != "disabled" || r[3] != "disabled" || r[4] != "-" || r[5] != "-" {
		t.Errorf("off row = %q", r)
	}
	if r := rows["gone"]; r[3] != "down" || r[5] != "-" || !strings.Contains(strings.Join(r[11:], " "), "refused") {
		t.Errorf("gone row = %q", r)
	}
}

func TestHostsCommandJSON(t *testing.T) {
	cfg, kh := hostsLab(t)
	// Every flag after `hosts`, including -y.
	out, errOut, err := runCLI(t, "hosts", "--json", "-y", cfg, "-c", "lab", "--known-hosts", kh, "--ssh-config", "none")
	if Code(err) != ExitIncomplete {
		t.Fatalf("code %d (%v)\n%s\n%s", Code(err), err, out, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	by := map[string]map[string]any{}
	var order []string
	for _, r := range rows {
		by[r["host"].(string)] = r
		order = append(order, r["host"].(string))
	}
	if strings.Join(order, ",") != "box,nas,off,gone" {
		t.Errorf("order = %v, want file order", order)
	}
	for _, h := range []string{"box", "nas"} {
		r := by[h]
		if r["status"] != "up" || r["ffmpeg"] == "" || r["cores"].(float64) < 1 || r["latency_ms"].(float64) <= 0 {
			t.Errorf("%s = %v", h, r)
		}
		if load, ok := r["load"].([]any); !ok || len(load) != 3 {
			t.Errorf("%s load = %v", h, r["load"])
		}
		sw, _ := r["sw_encoders"].([]any)
		if !strings.Contains(fmt.Sprint(sw), "libx264") {
			t.Errorf("%s sw_encoders = %v", h, sw)
		}
		if gpus, ok := r["gpus"].([]any); !ok || len(gpus) != 0 {
			t.Errorf("%s gpus = %#v, want []", h, r["gpus"])
		}
	}
	if f, ok := by["nas"]["free_bytes"].(float64); !ok || f <= 0 {
		t.Errorf("nas free_bytes = %v", by["nas"]["free_bytes"])
	}
	if _, ok := by["box"]["free_bytes"]; ok {
		t.Errorf("box (local) has free_bytes")
	}
	if by["off"]["status"] != "disabled" || by["off"]["ffmpeg"] != nil {
		t.Errorf("off = %v", by["off"])
	}
	if by["gone"]["status"] != "down" || by["gone"]["reason"] == "" {
		t.Errorf("gone = %v", by["gone"])
	}
}

func TestHostsCommandFlagPositions(t *testing.T) {
	cfg, kh := hostsLab(t)
	// Global flags before `hosts`, -c as the global sticky flag: all up.
	out, errOut, err := runCLI(t, "-y", cfg, "--known-hosts", kh, "--ssh-config", "none", "-c", "solo", "hosts")
	if err != nil {
		t.Fatalf("code %d (%v)\n%s\n%s", Code(err), err, out, errOut)
	}
	rows := tableRows(t, out)
	if len(rows) != 1 || rows["box"][3] != "up" {
		t.Errorf("solo rows = %v", rows)
	}
	// No -c: every cluster, each host once.
	out, _, err = runCLI(t, "-y", cfg, "hosts", "--json", "--known-hosts", kh, "--ssh-config", "none")
	if Code(err) != ExitIncomplete {
		t.Fatalf("all clusters: code %d (%v)", Code(err), err)
	}
	var all []HostRow
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 || strings.Join(all[0].Clusters, ",") != "lab,solo" {
		t.Errorf("all clusters = %+v", all)
	}
	// Config errors exit 1.
	if _, _, err := runCLI(t, "-y", cfg, "hosts", "-c", "nope"); Code(err) != ExitFatal || !strings.Contains(err.Error(), "clusters: lab, solo") {
		t.Errorf("unknown cluster: code %d (%v)", Code(err), err)
	}
	if _, _, err := runCLI(t, "hosts", "-y", filepath.Join(t.TempDir(), "missing.yml")); Code(err) != ExitFatal {
		t.Errorf("missing config: code %d (%v)", Code(err), err)
	}
	if _, _, err := runCLI(t, "hosts", "--no-such-flag"); Code(err) != ExitUsage {
		t.Errorf("bad flag: code %d (%v)", Code(err), err)
	}
}

func TestHostsCommandEmbeddedDefault(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	out, errOut, err := runCLI(t, "hosts")
	if err != nil {
		t.Fatalf("code %d (%v)\n%s\n%s", Code(err), err, out, errOut)
	}
	rows := tableRows(t, out)
	if len(rows) != 1 || rows["local"][1] != "local" || rows["local"][3] != "up" {
		t.Errorf("default config rows = %v\n%s", rows, out)
	}
}

// TestHostsCommandParallelTimeout: two hosts that accept TCP and never
// speak SSH are each given up on after --check-timeout, at the same time.
func TestHostsCommandParallelTimeout(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	// Four hosts that accept TCP and never speak, 1 s timeout each: probed
	// one after another they would take at least 4 s, in parallel about 1 s.
	var addrs []*net.TCPAddr
	for i := 0; i < 4; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() }) // hold it open, say nothing
			}
		}()
		addrs = append(addrs, ln.Addr().(*net.TCPAddr))
	}
	key := hoststest.StartSSHD(t, hoststest.Options{}).IdentityFile // a client key to offer
	dir := t.TempDir()
	y := "config:\n  clusters:\n    hung:\n"
	for i, a := range addrs {
		y += fmt.Sprintf("      h%d:\n        type: mounted\n        ip: 127.0.0.1\n        port: %d\n        user: nobody\n        identity_file: %s\n", i, a.Port, key)
	}
	cfg := filepath.Join(dir, "t.yml")
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, _, err := runCLI(t, "-y", cfg, "hosts", "--json", "--check-timeout", "1s", "--ssh-config", "none",
		"--known-hosts", filepath.Join(dir, "kh"))
	took := time.Since(start)
	if Code(err) != ExitIncomplete {
		t.Fatalf("code %d (%v)\n%s", Code(err), err, out)
	}
	var rows []HostRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		// Two equal timers (the SSH handshake bound, the check deadline) race:
		// either message is right as long as it names the limit.
		if r.Status != "down" || !strings.Contains(r.Reason, "1s") {
			t.Errorf("%s: %s %q", r.Host, r.Status, r.Reason)
		}
		t.Logf("%s: %s", r.Host, r.Reason)
	}
	if took > 3*time.Second {
		t.Errorf("took %v for four hosts with a 1s timeout: not probed in parallel", took)
	}
}

// `clustertx hosts` shows, per profile with encoder variants, the variant
// each host would use and why it passed over the earlier ones (each tested
// there, to the null muxer); --json has the same.
func TestHostsCommandVariants(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	hw := hoststest.NewFakeHW(t)
	hw.FailTest(t, "nvenc", true)
	dir := t.TempDir()
	y := "config:\n  clusters:\n    solo:\n      box:\n        type: local\n        ffmpeg: " + hw.Path + "\n" +
		"      cpu:\n        type: local\n        exclude_encoders: [hevc_nvenc, hevc_qsv]\n" +
		"profiles:\n  auto:\n    extension: .mkv\n    crf: 28\n    encoders:\n" +
		"      - encoder: hevc_nvenc\n        input_options: -hwaccel cuda\n      - hevc_qsv\n      - libx265\n"
	cfg := filepath.Join(dir, "transcode.yml")
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, "-y", cfg, "hosts")
	if err != nil {
		t.Fatalf("hosts: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{
		"encoder variants (the first that works on each host):",
		"  box, profile auto: hevc_qsv (passed over hevc_nvenc: test encode failed: OpenEncodeSessionEx failed",
		"  cpu, profile auto: libx265 (passed over hevc_nvenc: excluded by host config (exclude_encoders); hevc_qsv: excluded by host config (exclude_encoders))",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("hosts output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runCLI(t, "-y", cfg, "hosts", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []HostRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, r := range rows {
		if r.Host != "box" {
			continue
		}
		if len(r.Variants) != 1 || r.Variants[0].Key != "hevc_qsv" || len(r.Variants[0].Passed) != 1 || r.Variants[0].Passed[0].Key != "hevc_nvenc" {
			t.Errorf("box's variants in --json: %+v", r.Variants)
		}
	}
}
