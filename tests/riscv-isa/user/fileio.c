/* files: create, write, lseek, read back, fstat/stat, readdir, rename, unlink */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char path[512], path2[512];
    snprintf(path, sizeof(path), "%s/data.txt", argv[1]);
    snprintf(path2, sizeof(path2), "%s/renamed.txt", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror("fopen");
        return 1;
    }
    for (int i = 0; i < 1000; i++)
        fprintf(f, "line %d %x\n", i, i * 7919);
    fclose(f);
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    printf("size %lld regular %d\n", (long long)st.st_size, S_ISREG(st.st_mode));
    lseek(fd, 100, SEEK_SET);
    char buf[64] = {0};
    ssize_t n = read(fd, buf, 20);
    printf("read %zd: %.20s\n", n, buf);
    printf("end %lld\n", (long long)lseek(fd, 0, SEEK_END));
    close(fd);
    f = fopen(path, "r");
    unsigned long sum = 0;
    char line[128];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        lines++;
        for (char *p = line; *p; p++)
            sum = sum * 31 + (unsigned char)*p;
    }
    fclose(f);
    printf("lines %d sum %lu\n", lines, sum);
    if (rename(path, path2) != 0)
        perror("rename");
    printf("stat old %d new %d\n", stat(path, &st), stat(path2, &st));
    DIR *d = opendir(argv[1]);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            printf("entry %s\n", e->d_name), entries++;
    closedir(d);
    printf("unlink %d\n", unlink(path2));
    printf("open missing: %d\n", open(path, O_RDONLY) < 0);
    return 0;
}
