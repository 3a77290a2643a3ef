// libFuzzer target for proto_msg_decode, the any-type decoder receive loops use (properties
// checked: tests/fuzz/fuzz_proto.h). Its corpus mixes every message type.
#include "tests/fuzz/fuzz_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_msg m;
    hy_error_clear();
    if (proto_msg_decode(data, size, &m) == 0) fuzz_check_reencode(&m);
    else fuzz_check_refusal();
    return 0;
}
