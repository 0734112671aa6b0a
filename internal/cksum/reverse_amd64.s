//go:build !purego

#include "textflag.h"

// Nibble tables for PSHUFB: revLo[i] is the 4 bits of i reversed and moved
// to the high nibble, revHi[i] the 4 bits of i reversed.
DATA revLo<>+0(SB)/8, $0xe060a020c0408000
DATA revLo<>+8(SB)/8, $0xf070b030d0509010
GLOBL revLo<>(SB), RODATA|NOPTR, $16
DATA revHi<>+0(SB)/8, $0x0e060a020c040800
DATA revHi<>+8(SB)/8, $0x0f070b030d050901
GLOBL revHi<>(SB), RODATA|NOPTR, $16
DATA nibble<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nibble<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL nibble<>(SB), RODATA|NOPTR, $16

// func reverse16SSSE3(dst, src *byte, blocks int)
// Reverses the bits of each byte of blocks×16 bytes from src into dst.
TEXT ·reverse16SSSE3(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ blocks+16(FP), CX
	TESTQ CX, CX
	JZ done
	MOVOU revLo<>(SB), X4
	MOVOU revHi<>(SB), X5
	MOVOU nibble<>(SB), X6
loop:
	MOVOU (SI), X0
	MOVO X0, X1
	PSRLW $4, X1
	PAND X6, X0
	PAND X6, X1
	MOVO X4, X2
	PSHUFB X0, X2
	MOVO X5, X3
	PSHUFB X1, X3
	POR X3, X2
	MOVOU X2, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JNZ loop
done:
	RET
