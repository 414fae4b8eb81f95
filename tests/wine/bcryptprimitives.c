/* A stand-in for Windows' bcryptprimitives.dll, for running Tandem's Windows agent under
 * Wine 8 in tests only. Rust's standard library asks this DLL for ProcessPrng, which real
 * Windows (10 and later) has and Wine 8 lacks: without it the .exe ends at once (code 53).
 * It forwards to RtlGenRandom (advapi32's SystemFunction036), the system's CSPRNG.
 * Never shipped: the test harness (tests/src/wine.rs) builds it into the Wine prefix. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
