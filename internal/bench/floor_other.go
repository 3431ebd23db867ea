//go:build !linux

package bench

import (
	"context"
	"errors"
)

// floor is S0, which reads thread CPU times from /proc and waits in epoll:
// Linux only.
func floor(_ context.Context, _ *Config, sz sizes) Result {
	res := Result{Scenario: ScenarioFloor, Target: KindFloor, Transport: "tcp", Conns: sz.fanoutSubs, Channels: 1}
	rec := newRecorder()
	rec.errs.add(errors.New("the floor scenario needs Linux"))
	return finish(res, rec)
}
