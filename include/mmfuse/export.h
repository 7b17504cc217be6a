// MMFUSE_API marks what libmmfuse.so exports: the public API below
// include/mmfuse/ and nothing else (the library is built with hidden visibility).
#pragma once

#if defined(MMFUSE_STATIC)
#define MMFUSE_API
#else
#define MMFUSE_API __attribute__((visibility("default")))
#endif
