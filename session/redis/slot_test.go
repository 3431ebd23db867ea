package redis

import "testing"

func TestKeySlot(t *testing.T) {
	// Slots as CLUSTER KEYSLOT reports them.
	for tag, want := range map[string]int{"foo": 12182, "bar": 5061, "": 0, "123456789": 0x31C3} {
		if got := keySlot(tag); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", tag, got, want)
		}
	}
	for _, slot := range []int{0, 1, 5061, 16383} {
		if got := keySlot(slotTag(slot)); got != slot {
			t.Errorf("slotTag(%d) = %q, which is in slot %d", slot, slotTag(slot), got)
		}
	}
}
