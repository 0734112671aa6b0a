package bench

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/cksum"
	"clustertx/internal/testenv"
)

// Transfer throughput benchmark (issue benchmark 3).
const (
	xferRounds  = 5
	xferBig     = 1 << 30   // 1 GiB when the temp disk has room…
	xferSmall   = 256 << 20 // …else 256 MiB
	xferMinFree = 5 << 30   // the file, the uploaded copy, the downloaded copy, with margin
	mib         = 1 << 20
	ourCipher   = "aes128-gcm@openssh.com" // what x/crypto/ssh negotiates with OpenSSH (its first preference)
)

// writeRandomFile writes size pseudo-random (incompressible) bytes to path.
func writeRandomFile(b *testing.B, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	w := bufio.NewWriterSize(f, 4*mib)
	if _, err := io.CopyN(w, rng, size); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// scpRunner runs OpenSSH scp against one server, with nothing from the
// user's ssh configuration.
type scpRunner struct {
	s     *hoststest.SSHD
	known string
}

func (r scpRunner) args(extra ...string) []string {
	a := []string{"-q", "-F", "/dev/null", "-P", strconv.Itoa(r.s.Port), "-i", r.s.IdentityFile,
		"-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + r.known, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	return append(a, extra...)
}

func (r scpRunner) remote(p string) string { return r.s.User + "@" + r.s.Host + ":" + p }

func (r scpRunner) run(b *testing.B, args ...string) time.Duration {
	cmd := exec.Command("scp", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("scp %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return d
}

// cipherOfSCP asks scp -v which cipher it negotiates (client→server).
func (r scpRunner) cipher(b *testing.B, local, remote string, extra ...string) string {
	args := append(r.args(extra...), local, r.remote(remote))
	args[0] = "-v"
	out, err := exec.Command("scp", args...).CombinedOutput()
	if err != nil {
		b.Fatalf("scp -v: %v: %s", err, out)
	}
	if m := cipherRE.FindStringSubmatch(string(out)); m != nil {
		return m[1]
	}
	return "?"
}

var cipherRE = regexp.MustCompile(`kex: client->server cipher: (\S+)`)

func rmFile(b *testing.B, p string) {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		b.Fatal(err)
	}
}

// timeHash times hashing p with h (what Download computes while a file
// arrives: SHA-256, or cksum's CRC).
func timeHash(b *testing.B, p string, h io.Writer) time.Duration {
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if _, err := io.Copy(h, f); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// cksumTool times the cksum command on p (GNU coreutils' CRC, what a
// download is checked with on this machine).
func cksumTool(b *testing.B, p string) time.Duration {
	start := time.Now()
	if out, err := exec.Command("cksum", p).CombinedOutput(); err != nil {
		b.Fatalf("cksum: %v: %s", err, out)
	}
	return time.Since(start)
}

func fsyncFile(b *testing.B, p string) time.Duration {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkTransferThroughput (issue benchmark 3): a 1 GiB file of random
// bytes (256 MiB when the temp disk has under 5 GiB free) uploaded to and
// downloaded from one real sshd on loopback, 5 rounds, alternating:
//   - ours: hosts.SSHTransport.Upload / Download over x/crypto/ssh
//     (Upload with pkg/sftp, Download with its own SFTP reads on a
//     session of their own), each including its verification: byte count, remote
//     size, and a check computed while streaming against one run on the
//     host: Upload's is SHA-256 (openssl on the host), Download's the POSIX
//     CRC of `cksum` where the host has GNU coreutils ≥ 9.0, as this
//     machine does, SHA-256 elsewhere; Download also fsyncs the local file;
//   - scp: OpenSSH's scp to the same server (OpenSSH ≥ 9 scp speaks SFTP),
//     with its default cipher (chacha20-poly1305);
//   - scp-gcm: scp forced to the cipher ours negotiates (aes128-gcm), to
//     separate the cipher choice from the implementation.
//
// The order within a round rotates. Reported: MiB/s medians and the ratio
// ours/scp per direction (target ≥ 0.9). The verification costs are timed
// on their own in the same rounds (remote SHA-256 over SSH, local SHA-256
// of the file, `cksum` of the file and our CRC of it, fsync of a downloaded
// copy) so that ours can also be read without them.
func BenchmarkTransferThroughput(b *testing.B) {
	testenv.Need(b, "scp", "cksum")
	dir := b.TempDir()
	size := int64(xferBig)
	note := "1 GiB"
	if free := freeBytes(dir); free >= 0 && free < xferMinFree {
		size = xferSmall
		note = fmt.Sprintf("256 MiB (only %.1f GiB free in %s, under 5 GiB)", float64(free)/(1<<30), dir)
	}
	// DEBUG1 makes sshd log the negotiated cipher; it logs nothing per packet.
	s := hoststest.StartSSHD(b, hoststest.Options{ExtraConfig: []string{"LogLevel DEBUG1"}})
	known := filepath.Join(dir, "known_hosts")
	hoststest.WriteKnownHosts(b, known, s)
	local := filepath.Join(dir, "local")
	remote := filepath.Join(dir, "remote")
	for _, d := range []string{local, remote} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	src := filepath.Join(local, "src.bin")
	writeRandomFile(b, src, size)
	remoteSrc := filepath.Join(remote, "download-src.bin") // what both tools download
	if err := exec.Command("cp", src, remoteSrc).Run(); err != nil {
		b.Fatal(err)
	}

	ctx := context.Background()
	def := s.Def("xfer")
	def.Type = hosts.Streaming
	def.WorkingDir = remote
	tr, err := hosts.DialSSH(ctx, def, hosts.SSHOptions{KnownHostsFiles: []string{known}, SSHConfigFile: "none", ConnectTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	scp := scpRunner{s: s, known: known}
	gcm := []string{"-c", ourCipher}
	tiny := filepath.Join(local, "tiny")
	if err := os.WriteFile(tiny, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	scpCipher := scp.cipher(b, tiny, filepath.Join(remote, "tiny"))
	scpGCMCipher := scp.cipher(b, tiny, filepath.Join(remote, "tiny"), gcm...)
	oursCipher := sshdCipher(s)

	type sample struct{ up, down []float64 } // MiB/s
	var ours, scpDef, scpGCM sample
	var remoteHash, localHash, toolCRC, localCRC, fsync []float64 // seconds
	var scpSynced []float64                                       // MiB/s of scp's download with its fsync
	mibs := func(d time.Duration) float64 { return float64(size) / mib / d.Seconds() }
	upDst := filepath.Join(remote, "up.bin")
	downDst := filepath.Join(local, "down.bin")

	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for round := 0; round < xferRounds; round++ {
			steps := []func(){
				func() { // ours
					rmFile(b, upDst)
					start := time.Now()
					if err := tr.Upload(ctx, src, upDst); err != nil {
						b.Fatal(err)
					}
					ours.up = append(ours.up, mibs(time.Since(start)))
					rmFile(b, downDst)
					start = time.Now()
					if err := tr.Download(ctx, remoteSrc, downDst); err != nil {
						b.Fatal(err)
					}
					ours.down = append(ours.down, mibs(time.Since(start)))
				},
				func() { // scp, default cipher
					rmFile(b, upDst)
					scpDef.up = append(scpDef.up, mibs(scp.run(b, append(scp.args(), src, scp.remote(upDst))...)))
					rmFile(b, downDst)
					d := scp.run(b, append(scp.args(), scp.remote(remoteSrc), downDst)...)
					scpDef.down = append(scpDef.down, mibs(d))
					// The same copy made durable, as Download's is: its
					// fsync right after.
					scpSynced = append(scpSynced, mibs(d+fsyncFile(b, downDst)))
				},
				func() { // scp with our cipher
					rmFile(b, upDst)
					scpGCM.up = append(scpGCM.up, mibs(scp.run(b, append(scp.args(gcm...), src, scp.remote(upDst))...)))
					rmFile(b, downDst)
					scpGCM.down = append(scpGCM.down, mibs(scp.run(b, append(scp.args(gcm...), scp.remote(remoteSrc), downDst)...)))
				},
			}
			for k := range steps {
				steps[(k+round)%len(steps)]()
			}
			// Verification costs on their own (all files are in the page
			// cache, as they are inside Upload and Download).
			start := time.Now()
			if _, ok, err := tr.RemoteSHA256(ctx, remoteSrc); err != nil || !ok {
				b.Fatalf("remote sha256: ok=%v err=%v", ok, err)
			}
			remoteHash = append(remoteHash, time.Since(start).Seconds())
			localHash = append(localHash, timeHash(b, src, sha256.New()).Seconds())
			toolCRC = append(toolCRC, cksumTool(b, src).Seconds())
			localCRC = append(localCRC, timeHash(b, src, cksum.New()).Seconds())
			fsync = append(fsync, fsyncFile(b, downDst).Seconds()) // scp's copy: scp does not fsync
		}
	}
	b.StopTimer()

	sz := float64(size) / mib
	// ours without the hash run on the host after an upload's copy.
	noVerify := func(rate, hash float64) float64 { return sz / (sz/rate - hash) }
	up, down := median(ours.up), median(ours.down)
	rh, lh, fs := median(remoteHash), median(localHash), median(fsync)
	verdict := func(r float64) string {
		if r >= 0.9 {
			return "meets"
		}
		return "MISSES"
	}
	b.Logf("%s of random bytes, loopback sshd (%s), 2 cores, %d rounds alternating, MiB/s medians; ciphers: ours %s, scp %s, scp-gcm %s",
		note, strings.TrimSpace(tr.ServerVersion()), xferRounds, oursCipher, scpCipher, scpGCMCipher)
	b.Logf("%-9s %8s %8s %8s %9s %12s %s", "direction", "ours", "scp", "scp-gcm", "ours/scp", "ours/scp-gcm", "target ours/scp ≥ 0.9")
	b.Logf("%-9s %8.0f %8.0f %8.0f %9.2f %12.2f %s", "upload", up, median(scpDef.up), median(scpGCM.up), up/median(scpDef.up), up/median(scpGCM.up), verdict(up/median(scpDef.up)))
	b.Logf("%-9s %8.0f %8.0f %8.0f %9.2f %12.2f %s", "download", down, median(scpDef.down), median(scpGCM.down), down/median(scpDef.down), down/median(scpGCM.down), verdict(down/median(scpDef.down)))
	b.Logf("per round ours/scp: up %s; down %s", fmtList(ratios(ours.up, scpDef.up)), fmtList(ratios(ours.down, scpDef.down)))
	// scp leaves its copy in the page cache; Download fsyncs (a download
	// is about to replace an original), so also compare with scp's copy
	// made as durable.
	b.Logf("download against scp followed by an fsync of its copy: %.0f MiB/s, ours/that %.2f (per round %s)",
		median(scpSynced), down/median(scpSynced), fmtList(ratios(ours.down, scpSynced)))
	b.ReportMetric(down/median(scpSynced), "down-ours/scp+fsync")
	// Download runs both hashes beside the copy and writes the file back
	// while it arrives, so these costs are not subtracted from its time;
	// upload's remote hash follows the copy.
	tc, lc := median(toolCRC), median(localCRC)
	b.Logf("verification timed alone: remote SHA-256 over SSH %.2fs (%.0f MiB/s), local SHA-256 %.2fs (%.0f MiB/s), "+
		"cksum %.2fs (%.0f MiB/s), our CRC %.2fs (%.0f MiB/s), fsync of a freshly written copy %.2fs; "+
		"ours checks during the download and starts its writeback during it",
		rh, sz/rh, lh, sz/lh, tc, sz/tc, lc, sz/lc, fs)
	b.Logf("upload without its remote hash (which follows the copy): %.0f MiB/s (%.2f × scp)", noVerify(up, rh), noVerify(up, rh)/median(scpDef.up))
	b.ReportMetric(up, "up-ours-MiB/s")
	b.ReportMetric(median(scpDef.up), "up-scp-MiB/s")
	b.ReportMetric(up/median(scpDef.up), "up-ours/scp")
	b.ReportMetric(down, "down-ours-MiB/s")
	b.ReportMetric(median(scpDef.down), "down-scp-MiB/s")
	b.ReportMetric(down/median(scpDef.down), "down-ours/scp")
	b.ReportMetric(up/median(scpGCM.up), "up-ours/scp-gcm")
	b.ReportMetric(down/median(scpGCM.down), "down-ours/scp-gcm")
	b.ReportMetric(rh, "remote-sha256-s")
}

func ratios(a, b []float64) []float64 {
	var out []float64
	for i := range a {
		out = append(out, a[i]/b[i])
	}
	return out
}

// sshdCipher reads the cipher of the first connection from the sshd log
// (logged at LogLevel DEBUG1 and above; "?" otherwise).
func sshdCipher(s *hoststest.SSHD) string {
	if m := cipherRE.FindStringSubmatch(s.Log()); m != nil {
		return m[1]
	}
	return "?"
}
