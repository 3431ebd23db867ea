package redis

import (
	"strconv"
	"sync"
)

// keySlot is the Redis Cluster slot of a key whose hash tag is tag:
// CRC16 (XMODEM) of the tag, modulo 16384.
func keySlot(tag string) int {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc & 16383)
}

var (
	slotTagsOnce sync.Once
	slotTags     []string
)

// slotTag returns a short hash tag that falls in slot: the first base-36
// number that does. The table is built once, on first use (about 200,000
// CRCs of a few bytes).
func slotTag(slot int) string {
	slotTagsOnce.Do(func() {
		slotTags = make([]string, 16384)
		left := len(slotTags)
		for n := int64(0); left > 0; n++ {
			tag := strconv.FormatInt(n, 36)
			if s := keySlot(tag); slotTags[s] == "" {
				slotTags[s] = tag
				left--
			}
		}
	})
	return slotTags[slot]
}
