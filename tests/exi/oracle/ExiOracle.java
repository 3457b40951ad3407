/*
 * A long-lived EXI oracle process for the differential tests of evsev2g.exi.
 *
 * It drives the EXIficient reference codec (which is NOT part of evsev2g: the
 * test set-up fetches a jar holding it and compiles this file against it) with
 * the EXI options of V2G: schema-informed from the given XSDs, non-strict,
 * bit-packed, no cookie, no options in the header (header byte 0x80), nothing
 * preserved, valueMaxLength 0 and valuePartitionCapacity 0 (no value string
 * table), no built-in element grammars or productions learned.
 *
 * Usage: java -cp EXICodec.jar:DIR ExiOracle NAME=XSD [NAME=XSD ...]
 *
 * Protocol: one request per line on stdin, one answer per line on stdout.
 *   E <set> <doc|frag> <base64 XML>   ->  OK <hex EXI>         | ERR <message>
 *   D <set> <doc|frag> <hex EXI>      ->  OK <base64 XML>      | ERR <message>
 *   Q                                  ->  (exits)
 * A grammar set is built from its XSD on first use and kept for the process.
 */

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;

import javax.xml.parsers.SAXParserFactory;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.stream.StreamResult;

import org.apache.xerces.xni.XMLResourceIdentifier;
import org.apache.xerces.xni.XNIException;
import org.apache.xerces.xni.parser.XMLEntityResolver;
import org.apache.xerces.xni.parser.XMLInputSource;
import org.xml.sax.InputSource;
import org.xml.sax.XMLReader;

import com.siemens.ct.exi.core.CodingMode;
import com.siemens.ct.exi.core.EXIFactory;
import com.siemens.ct.exi.core.FidelityOptions;
import com.siemens.ct.exi.core.grammars.Grammars;
import com.siemens.ct.exi.core.helpers.DefaultEXIFactory;
import com.siemens.ct.exi.grammars.GrammarFactory;
import com.siemens.ct.exi.main.api.sax.EXIResult;
import com.siemens.ct.exi.main.api.sax.EXISource;

public final class ExiOracle {

    /** Keeps schema loading off the network: external DTDs (xmldsig's DOCTYPE) resolve to nothing. */
    private static final class NoExternalDtd implements XMLEntityResolver {
        @Override
        public XMLInputSource resolveEntity(XMLResourceIdentifier id) throws XNIException, IOException {
            String sys = id.getLiteralSystemId();
            if (sys != null && sys.toLowerCase().endsWith(".dtd")) {
                return new XMLInputSource(id.getPublicId(), sys, id.getBaseSystemId(),
                        new ByteArrayInputStream(new byte[0]), "UTF-8");
            }
            return null;
        }
    }

    private final Map<String, String> xsds = new HashMap<>();
    private final Map<String, Grammars> grammars = new HashMap<>();
    private final Map<String, EXIFactory> factories = new HashMap<>();
    private final SAXParserFactory sax = SAXParserFactory.newInstance();
    private final TransformerFactory transformers = TransformerFactory.newInstance();

    private ExiOracle() {
        sax.setNamespaceAware(true);
    }

    private EXIFactory factory(String set, boolean fragment) throws Exception {
        String key = set + (fragment ? "/frag" : "/doc");
        EXIFactory f = factories.get(key);
        if (f != null) {
            return f;
        }
        Grammars g = grammars.get(set);
        if (g == null) {
            String xsd = xsds.get(set);
            if (xsd == null) {
                throw new IllegalArgumentException("unknown schema set " + set);
            }
            g = GrammarFactory.newInstance().createGrammars(xsd, new NoExternalDtd());
            grammars.put(set, g);
        }
        f = DefaultEXIFactory.newInstance();
        f.setGrammars(g);
        f.setFidelityOptions(FidelityOptions.createDefault());
        f.setCodingMode(CodingMode.BIT_PACKED);
        f.setFragment(fragment);
        f.setValueMaxLength(0);
        f.setValuePartitionCapacity(0);
        f.setMaximumNumberOfBuiltInElementGrammars(0);
        f.setMaximumNumberOfBuiltInProductions(0);
        factories.put(key, f);
        return f;
    }

    private String encode(EXIFactory f, byte[] xml) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        EXIResult result = new EXIResult(f);
        result.setOutputStream(out);
        XMLReader reader = sax.newSAXParser().getXMLReader();
        reader.setContentHandler(result.getHandler());
        // characters, not bytes: Xerces' own UTF-8 reader fails on 4-byte sequences that
        // straddle its buffer ("Invalid byte 3 of 4-byte UTF-8 sequence", XERCESJ-1257)
        reader.parse(new InputSource(new InputStreamReader(new ByteArrayInputStream(xml), StandardCharsets.UTF_8)));
        StringBuilder hex = new StringBuilder();
        for (byte b : out.toByteArray()) {
            hex.append(String.format("%02x", b & 0xff));
        }
        return hex.toString();
    }

    private String decode(EXIFactory f, String hex) throws Exception {
        byte[] exi = new byte[hex.length() / 2];
        for (int i = 0; i < exi.length; i++) {
            exi[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        EXISource source = new EXISource(f);
        source.setInputSource(new InputSource(new ByteArrayInputStream(exi)));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Transformer t = transformers.newTransformer();
        t.transform(source, new StreamResult(out));
        return Base64.getEncoder().encodeToString(out.toByteArray());
    }

    private String answer(String line) {
        String[] parts = line.split(" ", 4);
        try {
            if (parts.length != 4) {
                throw new IllegalArgumentException("expected: OP SET MODE PAYLOAD");
            }
            EXIFactory f = factory(parts[1], "frag".equals(parts[2]));
            if ("E".equals(parts[0])) {
                return "OK " + encode(f, Base64.getDecoder().decode(parts[3]));
            }
            if ("D".equals(parts[0])) {
                return "OK " + decode(f, parts[3]);
            }
            throw new IllegalArgumentException("unknown operation " + parts[0]);
        } catch (Throwable e) {
            StringBuilder msg = new StringBuilder(e.getClass().getSimpleName() + ": " + e.getMessage());
            for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
                msg.append(" <- ").append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
            }
            return "ERR " + msg.toString().replaceAll("[\\r\\n]+", " ");
        }
    }

    public static void main(String[] args) throws IOException {
        ExiOracle oracle = new ExiOracle();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            oracle.xsds.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintWriter out = new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), false);
        String line;
        while ((line = in.readLine()) != null) {
            if (line.equals("Q")) {
                break;
            }
            out.println(oracle.answer(line));
            out.flush();
        }
    }
}
