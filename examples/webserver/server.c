/* A minimal HTTP server for the reference build: it answers every request
 * with the uid it runs as, so tests can see the image is not root, and
 * exits 0 on SIGTERM (as PID 1 it gets no default action for it). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void stop(int signal_number) {
    (void)signal_number;
    _exit(0);
}

int main(void) {
    const char *port_text = getenv("PORT");
    int port = port_text ? atoi(port_text) : 8080;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "server: PORT must be 1-65535\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, stop);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = htons((unsigned short)port);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, 16) != 0) {
        perror("server");
        return 1;
    }
    fprintf(stderr, "server: listening on %d\n", port);
    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) {
            continue;
        }
        char request[2048];
        (void)read(client, request, sizeof request);
        char body[128];
        int length = snprintf(body, sizeof body, "hello from sealcraft (uid %d)\n", (int)getuid());
        char response[256];
        int total = snprintf(response, sizeof response,
                             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                             length, body);
        (void)write(client, response, (size_t)total);
        close(client);
    }
}
