/* test_count.c — dp_model_info_of_config (a net that stores only its alphas) gives
 * exactly what dp_model_create then dp_model_info_get give, for every network. */
#include <string.h>

#include "dynopool.h"
#include "testutil.h"

int main(void)
{
    static const int sizes[] = {32, 65, 224};
    for (int arch = 0; arch < 3; arch++)
        for (int pool = 0; pool < 3; pool++)
            for (int k = 0; k < 3; k++) {
                dp_model_config c = dp_model_defaults();
                c.arch = arch, c.pool = pool, c.size = sizes[k], c.width = 0.5f, c.classes = 37;
                c.in_ch = k == 1 ? 1 : 3;
                dp_model *m = NULL;
                dp_model_info a, b;
                memset(&a, 0x55, sizeof a), memset(&b, 0x55, sizeof b);
                CHECK(dp_model_create(&c, &m) == DP_OK && dp_model_info_get(m, &a) == DP_OK,
                      "create %s %s %d", dp_arch_name(arch), dp_pool_name(pool), c.size);
                CHECK(dp_model_info_of_config(&c, &b) == DP_OK, "count %s %s %d", dp_arch_name(arch),
                      dp_pool_name(pool), c.size);
                CHECK(a.gmacs == b.gmacs && a.params == b.params && a.dynopool_gmacs == b.dynopool_gmacs &&
                          a.n_stages == b.n_stages && a.n_alphas == b.n_alphas &&
                          !memcmp(a.sizes, b.sizes, sizeof a.sizes) && !memcmp(a.alphas, b.alphas, sizeof a.alphas),
                      "%s %s %d: gmacs %.9g / %.9g, params %lld / %lld", dp_arch_name(arch), dp_pool_name(pool),
                      c.size, a.gmacs, b.gmacs, a.params, b.params);
                dp_model_free(m);
            }
    dp_model_config bad = dp_model_defaults();
    dp_model_info in;
    bad.arch = 7;
    CHECK(dp_model_info_of_config(&bad, &in) == DP_ERR_ARG, "unknown arch");
    bad = dp_model_defaults(), bad.size = 1;
    CHECK(dp_model_info_of_config(&bad, &in) == DP_ERR_SIZE, "size 1");
    CHECK(dp_model_info_of_config(NULL, &in) == DP_ERR_NULL, "NULL");
    return tu_finish("count");
}
