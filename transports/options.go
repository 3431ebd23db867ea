package transports

import (
	"fmt"
	"time"
)

// DurationOption checks a duration in a transport's Options that has a
// default and no meaning below zero: zero takes def, a negative d is
// refused with an error naming the option. It runs in the transports'
// constructors, so every one words and treats such an option alike.
func DurationOption(name string, d, def time.Duration) (time.Duration, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("negative %s %v", name, d)
	case d == 0:
		return def, nil
	}
	return d, nil
}
