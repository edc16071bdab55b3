package explore

import (
	"testing"
	"time"
)

func TestSizes(t *testing.T) {
	for _, c := range []struct{ crashes, failures, questions int }{{1, 1, 0}, {1, 0, 1}, {0, 1, 1}, {1, 1, 1}} {
		cfg := full
		cfg.Participants = 2
		cfg.MaxCrashes, cfg.MaxFailures, cfg.MaxQuestions, cfg.MaxStates = c.crashes, c.failures, c.questions, 4000000
		start := time.Now()
		res := Run(cfg)
		t.Logf("crashes=%d failures=%d questions=%d: %d states %d steps %v violation=%q", c.crashes, c.failures, c.questions, res.States, res.Steps, time.Since(start), res.Violation)
		if res.Violation != "" {
			for _, s := range res.Trace {
				t.Log("  ", s)
			}
			return
		}
	}
}
