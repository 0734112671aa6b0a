package cksum

// refTable and refChecksum are the POSIX definition, byte at a time, as
// coreutils' cksum.c wrote it before it had faster paths.
var refTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for k := 0; k < 8; k++ {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return
}()

func refChecksum(p []byte) uint32 {
	var c uint32
	for _, b := range p {
		c = c<<8 ^ refTable[byte(c>>24)^b]
	}
	for n := len(p); n > 0; n >>= 8 {
		c = c<<8 ^ refTable[byte(c>>24)^byte(n)]
	}
	return ^c
}
