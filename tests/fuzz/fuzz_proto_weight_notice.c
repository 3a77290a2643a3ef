// libFuzzer target for proto_weight_notice_decode (properties checked: tests/fuzz/fuzz_proto.h).
#include "tests/fuzz/fuzz_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_msg m = {.type = PROTO_WEIGHT_NOTICE};
    hy_error_clear();
    if (proto_weight_notice_decode(data, size, &m.u.weight_notice) == 0) fuzz_check_reencode(&m);
    else fuzz_check_refusal();
    return 0;
}
