package report_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/coid-project/coid/labels/report"
)

// bigJourney is the full journey with 20,000 readings on each leg.
func bigJourney(t testing.TB) *report.Input {
	c, _ := fullJourney(t)
	var tele []report.Telemetry
	for _, l := range c.Legs {
		p := legPlan{shipper: l.Shipper, a: l.ShippedAt, b: *l.ReceivedAt, base: 5, wave: 1.5,
			bumpA: l.ShippedAt.Add(3 * time.Hour), bumpB: l.ShippedAt.Add(4 * time.Hour), bump: 9.5,
			tiltA: l.ShippedAt.Add(5 * time.Hour), tiltB: l.ShippedAt.Add(6 * time.Hour),
			lidA: l.ShippedAt.Add(7 * time.Hour), lidB: l.ShippedAt.Add(7*time.Hour + 3*time.Minute)}
		if l.Profile == "cryogenic" {
			p.base, p.bump = -186, -120
		}
		p.step = l.ReceivedAt.Sub(l.ShippedAt) / 19999
		rs := p.readings()
		if len(rs) < 20000 {
			t.Fatalf("leg %d: %d readings", l.N, len(rs))
		}
		tele = append(tele, report.Telemetry{Available: true, Readings: rs[:20000]})
	}
	return input(c, tele, nil)
}

func BenchmarkReportTwoLegs20kReadings(b *testing.B) {
	in := bigJourney(b)
	var buf bytes.Buffer
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf.Reset()
		if err := report.Write(&buf, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "pdf-bytes")
}

// TestLargeReportBounded checks the memory budget (50 MB allocated for two
// legs of 20,000 readings) and that the charts are drawn from a bounded
// number of points. The time (under 1 s) is BenchmarkReportTwoLegs20kReadings's to show: a
// wall-clock assertion fails on a loaded machine.
func TestLargeReportBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("large report")
	}
	in := bigJourney(t)
	res := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := report.Write(&bytes.Buffer{}, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	perOp := time.Duration(res.NsPerOp())
	t.Logf("report of 2 x 20,000 readings: %s, %.1f MB allocated, %d allocations", perOp, float64(res.AllocedBytesPerOp())/1e6, res.AllocsPerOp())
	if res.AllocedBytesPerOp() > 50<<20 {
		t.Errorf("%d bytes allocated per report, budget 50 MB", res.AllocedBytesPerOp())
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("COID_REPORT_DUMP"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "large.pdf"), buf.Bytes(), 0o644)
	}
	txt := squash(pdfText(t, buf.Bytes()))
	m := regexp.MustCompile(`(\d+) temperature readings drawn as (\d+) points`).FindAllStringSubmatch(txt, -1)
	if len(m) != 2 {
		t.Fatalf("legend does not report the decimation of both legs: %v", m)
	}
	// The chart is 164 mm wide: 328 buckets of 0.5 mm, at most 4 points
	// each, plus 3 per excursion.
	const maxPoints = 4*328 + 3*3
	for _, x := range m {
		n, _ := strconv.Atoi(x[2])
		if x[1] != "20000" || n > maxPoints || n < 328 {
			t.Errorf("%s readings drawn as %d points, want 328..%d", x[1], n, maxPoints)
		}
	}
}
