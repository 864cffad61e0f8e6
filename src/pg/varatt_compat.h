/* Version differences in TOAST pointer fields (PostgreSQL 13 has va_extsize). */
#pragma once
#if PG_VERSION_NUM >= 140000
#define RECSYS_EXTERNAL_EXTINFO(ext) ((ext).va_extinfo)
#else
#define RECSYS_EXTERNAL_EXTINFO(ext) ((uint32) (ext).va_extsize)
#endif
