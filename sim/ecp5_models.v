// Simulation models of the ECP5 primitives that yosys's cells_sim.v leaves as black boxes and
// the flashed Colorlight netlist uses (`wirestamp.sim.netlist`). References: Lattice
// FPGA-TN-02035 (ECP5 high-speed I/O: IDDRX1F, ODDRX1F, DELAYG), FPGA-TN-02200 (sysCLOCK PLL:
// EHXPLLL) and FPGA-TN-02205 (sysDSP: MULT18X18D).
//
// The DDR registers behave as the RTL tests' models of `io.DDRBuffer` (firmware/rgmii.py), so
// the netlist and the RTL agree on when a byte reaches the pins. DELAYG's delay is analogue
// (a few picoseconds per tap): in a simulation without wire delays it passes its input on,
// and the cable model is where a delay belongs.

// The pad, as yosys's model of it less the `z` it drives onto an input (`netlist.cell_models`).
// T, the output's tristate control, is honoured on bidirectional pads only (MDIO, pulled up
// outside): an output pad always drives here, where T from the output-enable register beside
// it would float it until that register leaves reset.
module TRELLIS_IO(inout B, input I, input T, output O);
    parameter DIR = "INPUT";
    generate
        if (DIR == "INPUT") begin
            assign O = B;
        end else if (DIR == "OUTPUT") begin
            assign B = I;
            assign O = 1'bx;
        end else begin
            assign B = T ? 1'bz : I;
            assign O = B;
        end
    endgenerate
endmodule

// Q0: the sample of one rising edge of SCLK, Q1: the sample of the falling edge after it,
// both presented together at the next rising edge.
module IDDRX1F(input D, input SCLK, input RST, output reg Q0, output reg Q1);
    parameter GSR = "ENABLED";
    reg at_rise, at_fall;
    always @(posedge SCLK) begin
        at_rise <= D;
        Q0 <= at_rise;
        Q1 <= at_fall;
    end
    always @(negedge SCLK) at_fall <= D;
endmodule

// D0 leaves with the rising edge of SCLK, D1 with the falling edge (both taken at the rising).
module ODDRX1F(input SCLK, input RST, input D0, input D1, output Q);
    parameter GSR = "ENABLED";
    reg rising, falling;
    always @(posedge SCLK) begin
        rising <= D0;
        falling <= D1;
    end
    assign Q = SCLK ? rising : falling;
endmodule

module DELAYG(input A, output Z);
    parameter DEL_MODE = "USER_DEFINED";
    parameter DEL_VALUE = 0;
    assign Z = A;
endmodule

// The PLL as a clock model. A simulation without delays cannot multiply a clock, so the bench
// drives the board's clock pin at CLKOP's frequency (CLKI's × CLKFB_DIV / CLKI_DIV, which the
// bench computes from these parameters); CLKOS is CLKOP divided by CLKOS_DIV / CLKOP_DIV (2
// here, with their rising edges together). LOCK rises after 16 cycles.
module EHXPLLL(input CLKI, input CLKFB, input PHASESEL1, input PHASESEL0, input PHASEDIR,
               input PHASESTEP, input PHASELOADREG, input STDBY, input PLLWAKESYNC, input RST,
               input ENCLKOP, input ENCLKOS, input ENCLKOS2, input ENCLKOS3,
               output CLKOP, output reg CLKOS, output CLKOS2, output CLKOS3, output reg LOCK,
               output INTLOCK, output REFCLK, output CLKINTFB);
    parameter CLKI_DIV = 1;
    parameter CLKFB_DIV = 1;
    parameter CLKOP_DIV = 8;
    parameter CLKOS_DIV = 8;
    parameter CLKOS2_DIV = 8;
    parameter CLKOS3_DIV = 8;
    parameter CLKOP_ENABLE = "ENABLED";
    parameter CLKOS_ENABLE = "DISABLED";
    parameter CLKOS2_ENABLE = "DISABLED";
    parameter CLKOS3_ENABLE = "DISABLED";
    parameter CLKOP_CPHASE = 0;
    parameter CLKOS_CPHASE = 0;
    parameter CLKOS2_CPHASE = 0;
    parameter CLKOS3_CPHASE = 0;
    parameter CLKOP_FPHASE = 0;
    parameter CLKOS_FPHASE = 0;
    parameter CLKOS2_FPHASE = 0;
    parameter CLKOS3_FPHASE = 0;
    parameter FEEDBK_PATH = "CLKOP";
    parameter CLKOP_TRIM_POL = "RISING";
    parameter CLKOP_TRIM_DELAY = 0;
    parameter CLKOS_TRIM_POL = "RISING";
    parameter CLKOS_TRIM_DELAY = 0;
    parameter OUTDIVIDER_MUXA = "DIVA";
    parameter OUTDIVIDER_MUXB = "DIVB";
    parameter OUTDIVIDER_MUXC = "DIVC";
    parameter OUTDIVIDER_MUXD = "DIVD";
    parameter PLL_LOCK_MODE = 0;
    parameter PLL_LOCK_DELAY = 200;
    parameter STDBY_ENABLE = "DISABLED";
    parameter REFIN_RESET = "DISABLED";
    parameter SYNC_ENABLE = "DISABLED";
    parameter INT_LOCK_STICKY = "ENABLED";
    parameter DPHASE_SOURCE = "DISABLED";
    parameter PLLRST_ENA = "DISABLED";
    parameter INTFB_WAKE = "DISABLED";
    initial if (CLKOS_DIV != 2 * CLKOP_DIV) $fatal(1, "EHXPLLL model: CLKOS must be CLKOP / 2");
    reg [4:0] cycles = 0;
    initial CLKOS = 0;
    initial LOCK = 0;
    assign CLKOP = CLKI;
    always @(posedge CLKI) begin
        CLKOS <= ~CLKOS;
        if (cycles != 16) cycles <= cycles + 1;
        LOCK <= cycles == 16;
    end
    assign CLKOS2 = 0, CLKOS3 = 0, INTLOCK = LOCK, REFCLK = CLKI, CLKINTFB = 0;
endmodule

// The 18×18 multiplier as yosys maps `*` to it: no registers (every REG_* "NONE", the
// defaults), so P is A × B at once; SIGNEDA/SIGNEDB make it signed. The C input and the
// shift chains are for cascades the netlist does not use.
module MULT18X18D(input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
                  input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
                  input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
                  input SIGNEDA, input SIGNEDB, input SOURCEA, input SOURCEB,
                  output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter GSR = "ENABLED";
    initial if (REG_INPUTA_CLK != "NONE" || REG_INPUTB_CLK != "NONE" ||
                REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE")
        $fatal(1, "MULT18X18D model: registered modes are not modelled");
    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    wire signed [35:0] a_ext = SIGNEDA ? {{18{a[17]}}, a} : {18'b0, a};
    wire signed [35:0] b_ext = SIGNEDB ? {{18{b[17]}}, b} : {18'b0, b};
    wire [35:0] product = a_ext * b_ext;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = product;
endmodule

// The 18 Kbit block RAM, which cells_sim.v declares without behaviour. As yosys's memory
// mapping (share/lattice/brams_16kd.txt and brams_map_16kd.v) takes it to be: 2,048 9-bit
// units; a port of width 1, 2 or 4 addresses the low 8 bits of a unit (AD[13:3] the unit,
// AD[2:0] the place), 9 a unit, 18 two units (AD[13:4]; AD[1:0] the units written) and 36
// four (AD[13:5]; AD[3:0] the units written; data on DIB:DIA, read on DOB:DOA, port A
// writing and port B reading). Lower units hold the lower bits. Reads are registered
// (REGMODE NOREG: one cycle); a port writing reads the old word (READBEFOREWRITE), the new
// (WRITETHROUGH) or keeps its output (NORMAL). RST clears the output at once (RESETMODE
// ASYNC, as in the netlist; SYNC is taken alike).
module DP16KD(input DIA0, DIA1, DIA2, DIA3, DIA4, DIA5, DIA6, DIA7, DIA8, DIA9, DIA10, DIA11, DIA12, DIA13, DIA14, DIA15, DIA16, DIA17,
              input ADA0, ADA1, ADA2, ADA3, ADA4, ADA5, ADA6, ADA7, ADA8, ADA9, ADA10, ADA11, ADA12, ADA13,
              input CEA, input OCEA, input CLKA, input WEA, input RSTA,
              input CSA2, input CSA1, input CSA0,
              output DOA0, DOA1, DOA2, DOA3, DOA4, DOA5, DOA6, DOA7, DOA8, DOA9, DOA10, DOA11, DOA12, DOA13, DOA14, DOA15, DOA16, DOA17,
              input DIB0, DIB1, DIB2, DIB3, DIB4, DIB5, DIB6, DIB7, DIB8, DIB9, DIB10, DIB11, DIB12, DIB13, DIB14, DIB15, DIB16, DIB17,
              input ADB0, ADB1, ADB2, ADB3, ADB4, ADB5, ADB6, ADB7, ADB8, ADB9, ADB10, ADB11, ADB12, ADB13,
              input CEB, input OCEB, input CLKB, input WEB, input RSTB,
              input CSB2, input CSB1, input CSB0,
              output DOB0, DOB1, DOB2, DOB3, DOB4, DOB5, DOB6, DOB7, DOB8, DOB9, DOB10, DOB11, DOB12, DOB13, DOB14, DOB15, DOB16, DOB17);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter CLKAMUX = "CLKA";
    parameter CLKBMUX = "CLKB";
    parameter GSR = "ENABLED";
    initial if (REGMODE_A != "NOREG" || REGMODE_B != "NOREG" || CSDECODE_A != "0b000" ||
                CSDECODE_B != "0b000")
        $fatal(1, "DP16KD model: output registers and chip selects are not modelled");

    parameter INITVAL_00 = 320'h0;
    parameter INITVAL_01 = 320'h0;
    parameter INITVAL_02 = 320'h0;
    parameter INITVAL_03 = 320'h0;
    parameter INITVAL_04 = 320'h0;
    parameter INITVAL_05 = 320'h0;
    parameter INITVAL_06 = 320'h0;
    parameter INITVAL_07 = 320'h0;
    parameter INITVAL_08 = 320'h0;
    parameter INITVAL_09 = 320'h0;
    parameter INITVAL_0A = 320'h0;
    parameter INITVAL_0B = 320'h0;
    parameter INITVAL_0C = 320'h0;
    parameter INITVAL_0D = 320'h0;
    parameter INITVAL_0E = 320'h0;
    parameter INITVAL_0F = 320'h0;
    parameter INITVAL_10 = 320'h0;
    parameter INITVAL_11 = 320'h0;
    parameter INITVAL_12 = 320'h0;
    parameter INITVAL_13 = 320'h0;
    parameter INITVAL_14 = 320'h0;
    parameter INITVAL_15 = 320'h0;
    parameter INITVAL_16 = 320'h0;
    parameter INITVAL_17 = 320'h0;
    parameter INITVAL_18 = 320'h0;
    parameter INITVAL_19 = 320'h0;
    parameter INITVAL_1A = 320'h0;
    parameter INITVAL_1B = 320'h0;
    parameter INITVAL_1C = 320'h0;
    parameter INITVAL_1D = 320'h0;
    parameter INITVAL_1E = 320'h0;
    parameter INITVAL_1F = 320'h0;
    parameter INITVAL_20 = 320'h0;
    parameter INITVAL_21 = 320'h0;
    parameter INITVAL_22 = 320'h0;
    parameter INITVAL_23 = 320'h0;
    parameter INITVAL_24 = 320'h0;
    parameter INITVAL_25 = 320'h0;
    parameter INITVAL_26 = 320'h0;
    parameter INITVAL_27 = 320'h0;
    parameter INITVAL_28 = 320'h0;
    parameter INITVAL_29 = 320'h0;
    parameter INITVAL_2A = 320'h0;
    parameter INITVAL_2B = 320'h0;
    parameter INITVAL_2C = 320'h0;
    parameter INITVAL_2D = 320'h0;
    parameter INITVAL_2E = 320'h0;
    parameter INITVAL_2F = 320'h0;
    parameter INITVAL_30 = 320'h0;
    parameter INITVAL_31 = 320'h0;
    parameter INITVAL_32 = 320'h0;
    parameter INITVAL_33 = 320'h0;
    parameter INITVAL_34 = 320'h0;
    parameter INITVAL_35 = 320'h0;
    parameter INITVAL_36 = 320'h0;
    parameter INITVAL_37 = 320'h0;
    parameter INITVAL_38 = 320'h0;
    parameter INITVAL_39 = 320'h0;
    parameter INITVAL_3A = 320'h0;
    parameter INITVAL_3B = 320'h0;
    parameter INITVAL_3C = 320'h0;
    parameter INITVAL_3D = 320'h0;
    parameter INITVAL_3E = 320'h0;
    parameter INITVAL_3F = 320'h0;
    parameter INIT_DATA = "STATIC";

    function [319:0] initval(input integer index);
        case (index)
            0: initval = INITVAL_00;
            1: initval = INITVAL_01;
            2: initval = INITVAL_02;
            3: initval = INITVAL_03;
            4: initval = INITVAL_04;
            5: initval = INITVAL_05;
            6: initval = INITVAL_06;
            7: initval = INITVAL_07;
            8: initval = INITVAL_08;
            9: initval = INITVAL_09;
            10: initval = INITVAL_0A;
            11: initval = INITVAL_0B;
            12: initval = INITVAL_0C;
            13: initval = INITVAL_0D;
            14: initval = INITVAL_0E;
            15: initval = INITVAL_0F;
            16: initval = INITVAL_10;
            17: initval = INITVAL_11;
            18: initval = INITVAL_12;
            19: initval = INITVAL_13;
            20: initval = INITVAL_14;
            21: initval = INITVAL_15;
            22: initval = INITVAL_16;
            23: initval = INITVAL_17;
            24: initval = INITVAL_18;
            25: initval = INITVAL_19;
            26: initval = INITVAL_1A;
            27: initval = INITVAL_1B;
            28: initval = INITVAL_1C;
            29: initval = INITVAL_1D;
            30: initval = INITVAL_1E;
            31: initval = INITVAL_1F;
            32: initval = INITVAL_20;
            33: initval = INITVAL_21;
            34: initval = INITVAL_22;
            35: initval = INITVAL_23;
            36: initval = INITVAL_24;
            37: initval = INITVAL_25;
            38: initval = INITVAL_26;
            39: initval = INITVAL_27;
            40: initval = INITVAL_28;
            41: initval = INITVAL_29;
            42: initval = INITVAL_2A;
            43: initval = INITVAL_2B;
            44: initval = INITVAL_2C;
            45: initval = INITVAL_2D;
            46: initval = INITVAL_2E;
            47: initval = INITVAL_2F;
            48: initval = INITVAL_30;
            49: initval = INITVAL_31;
            50: initval = INITVAL_32;
            51: initval = INITVAL_33;
            52: initval = INITVAL_34;
            53: initval = INITVAL_35;
            54: initval = INITVAL_36;
            55: initval = INITVAL_37;
            56: initval = INITVAL_38;
            57: initval = INITVAL_39;
            58: initval = INITVAL_3A;
            59: initval = INITVAL_3B;
            60: initval = INITVAL_3C;
            61: initval = INITVAL_3D;
            62: initval = INITVAL_3E;
            63: initval = INITVAL_3F;
            default: initval = 0;
        endcase
    endfunction

    // INITVAL_xx holds 16 18-bit words, each in 20 bits (as brams_map_16kd.v fills it).
    reg [8:0] units [0:2047];
    reg [319:0] row;
    integer r, w;
    initial for (r = 0; r < 64; r = r + 1) begin
        row = initval(r);
        for (w = 0; w < 16; w = w + 1) begin
            units[2 * (16 * r + w)] = row[20 * w +: 9];
            units[2 * (16 * r + w) + 1] = row[20 * w + 9 +: 9];
        end
    end

    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire clka = CLKAMUX == "INV" ? ~CLKA : CLKA;
    wire clkb = CLKBMUX == "INV" ? ~CLKB : CLKB;

    function [35:0] read(input integer width, input [13:0] ad);
        case (width)
            1: read = {35'b0, units[ad[13:3]][ad[2:0]]};
            2: read = {34'b0, ad[2:1] == 0 ? units[ad[13:3]][1:0] : ad[2:1] == 1 ?
                        units[ad[13:3]][3:2] : ad[2:1] == 2 ? units[ad[13:3]][5:4] :
                        units[ad[13:3]][7:6]};
            4: read = {32'b0, ad[2] ? units[ad[13:3]][7:4] : units[ad[13:3]][3:0]};
            9: read = {27'b0, units[ad[13:3]]};
            18: read = {18'b0, units[{ad[13:4], 1'b1}], units[{ad[13:4], 1'b0}]};
            default: read = {units[{ad[13:5], 2'd3}], units[{ad[13:5], 2'd2}],
                              units[{ad[13:5], 2'd1}], units[{ad[13:5], 2'd0}]};
        endcase
    endfunction

    // The units `width` bits of `data` at `ad` change (NBA: other ports still read the old).
    task write(input integer width, input [13:0] ad, input [35:0] data);
        reg [8:0] unit;
        begin
            unit = units[ad[13:3]];
            case (width)
                1: begin unit[ad[2:0]] = data[0]; units[ad[13:3]] <= unit; end
                2: begin
                    case (ad[2:1])
                        0: unit[1:0] = data[1:0];
                        1: unit[3:2] = data[1:0];
                        2: unit[5:4] = data[1:0];
                        default: unit[7:6] = data[1:0];
                    endcase
                    units[ad[13:3]] <= unit;
                end
                4: begin
                    if (ad[2]) unit[7:4] = data[3:0]; else unit[3:0] = data[3:0];
                    units[ad[13:3]] <= unit;
                end
                9: units[ad[13:3]] <= data[8:0];
                18: begin
                    if (ad[0]) units[{ad[13:4], 1'b0}] <= data[8:0];
                    if (ad[1]) units[{ad[13:4], 1'b1}] <= data[17:9];
                end
                default: begin
                    if (ad[0]) units[{ad[13:5], 2'd0}] <= data[8:0];
                    if (ad[1]) units[{ad[13:5], 2'd1}] <= data[17:9];
                    if (ad[2]) units[{ad[13:5], 2'd2}] <= data[26:18];
                    if (ad[3]) units[{ad[13:5], 2'd3}] <= data[35:27];
                end
            endcase
        end
    endtask

    reg [35:0] out_a = 0, out_b = 0;
    wire [35:0] in_a = DATA_WIDTH_A == 36 ? {dib, dia} : {18'b0, dia};
    wire [35:0] in_b = {18'b0, dib};
    always @(posedge clka or posedge RSTA)
        if (RSTA) out_a <= 0;
        else begin
            if (CEA) begin
                if (!WEA || WRITEMODE_A == "READBEFOREWRITE") out_a <= read(DATA_WIDTH_A, ada);
                else if (WRITEMODE_A == "WRITETHROUGH") out_a <= in_a;
            end
            if (CEA && WEA) write(DATA_WIDTH_A, ada, in_a);
        end
    always @(posedge clkb or posedge RSTB)
        if (RSTB) out_b <= 0;
        else begin
            if (CEB) begin
                if (!WEB || WRITEMODE_B == "READBEFOREWRITE") out_b <= read(DATA_WIDTH_B, adb);
                else if (WRITEMODE_B == "WRITETHROUGH") out_b <= in_b;
            end
            if (CEB && WEB) write(DATA_WIDTH_B, adb, in_b);
        end
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = DATA_WIDTH_B == 36 ? out_b[17:0] : out_a[17:0];
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = DATA_WIDTH_B == 36 ? out_b[35:18] : out_b[17:0];
endmodule
