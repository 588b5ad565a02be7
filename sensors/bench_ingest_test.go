package sensors_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/sensors"
)

// BenchmarkIngestEmbedded measures durable end-to-end ingest through the
// embedded broker: 4 paho publishers at QoS 1, each waiting for its
// PUBACKs (which the broker sends only after the commit), one reading per
// message.
func BenchmarkIngestEmbedded(b *testing.B) {
	e := newEnv(b, "embedded")
	const pubs = 4
	clients := make([]mqtt.Client, pubs)
	for i := range clients {
		clients[i] = publisher(b, e.url)
	}
	// Readings are 1 s apart (see payload): start far enough back that the
	// last is not in the future, which the pipeline rightly rejects.
	base := time.Now().Add(-time.Duration(b.N)*time.Second - time.Hour)
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := 0; p < pubs; p++ {
		wg.Go(func() {
			id := fmt.Sprintf("SHP-B%d", p)
			topic := sensors.TelemetryTopic(e.prefix, id)
			var toks []mqtt.Token
			for i := p; i < b.N; i += pubs {
				toks = append(toks, clients[p].Publish(topic, 1, false, payload(id, i, base)))
			}
			for _, t := range toks {
				t.Wait()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := waitCount(b, e.store, b.N, 10*time.Second); n != b.N {
		b.Fatalf("stored %d of %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
