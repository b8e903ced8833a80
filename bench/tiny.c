/* The program the exec storm runs: it ends at once, successfully.
 *
 *   gcc -O2 -static -o build/bench/pt-storm-child bench/tiny.c
 *
 * Static so the exec costs no dynamic loading; its basename,
 * pt-storm-child, is the comm the benchmark counts events by. */
#include <unistd.h>

int main(void)
{
	_exit(0);
}
