// DynamoDB Local on 127.0.0.1 only. Run as a source file (java -cp DynamoDBLocal.jar LoopbackDynamoDBLocal.java ARGS):
// no build step. DynamoDB Local has no bind-address option (its Jetty server is built with `new Server(port)`,
// which listens on every interface), so this builds the server with DynamoDB Local's own command line, moves its
// connector to 127.0.0.1 and a port the kernel picks, starts it, and prints the port. It stops when its standard
// input closes, so it never outlives the local stack that started it, however that stack ends; then it deletes
// its -dbPath folder (a temporary one the stack made), which a killed stack could not.
import java.io.File;
import java.lang.reflect.Field;
import java.util.Arrays;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        // Its command line refuses -port 0; any valid port does, as the connector's port is replaced below.
        String[] withPort = Arrays.copyOf(args, args.length + 2);
        withPort[args.length] = "-port";
        withPort[args.length + 1] = "8000";
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(withPort);
        Field serverField = DynamoDBProxyServer.class.getDeclaredField("server");
        serverField.setAccessible(true);
        Server server = (Server) serverField.get(proxy);
        Connector[] connectors = server.getConnectors();
        if (connectors.length != 1) {
            throw new IllegalStateException("expected one connector, DynamoDB Local made " + connectors.length);
        }
        ServerConnector connector = (ServerConnector) connectors[0];
        connector.setHost("127.0.0.1");
        connector.setPort(0);
        // Each request thread opens its own SQLite connection with its own page cache (~1.2 MB a thread); Jetty
        // would grow to 200 of them under a busy stack. pushlane.threads caps them (requests queue beyond).
        Integer threads = Integer.getInteger("pushlane.threads");
        if (threads != null && server.getThreadPool() instanceof QueuedThreadPool pool) {
            pool.setMaxThreads(threads);
            pool.setMinThreads(Math.min(pool.getMinThreads(), threads));
        }
        proxy.start();
        System.out.println("pushlane: DynamoDB Local listening on 127.0.0.1:" + connector.getLocalPort());
        System.out.flush();
        while (System.in.read() != -1) {
            // Nothing is ever sent: end of input is the signal to stop.
        }
        proxy.stop();
        int dbPath = Arrays.asList(args).indexOf("-dbPath");
        if (dbPath >= 0 && dbPath + 1 < args.length) {
            delete(new File(args[dbPath + 1]));
        }
        System.exit(0);
    }

    private static void delete(File file) {
        File[] children = file.listFiles();
        if (children != null) {
            for (File child : children) {
                delete(child);
            }
        }
        file.delete();
    }
}
