// Behavioural model of the iCE40UP5K SB_SPRAM256KA (16384 x 16 single-port RAM) for tests.
// Written for edgetrain from the port list of the Lattice primitive: a selected, powered
// cycle writes the nibbles enabled by MASKWREN (WREN high) or registers the addressed word
// on DATAOUT (WREN low); DATAOUT holds otherwise. Contents start at zero.
module SB_SPRAM256KA (
    input  [13:0] ADDRESS,
    input  [15:0] DATAIN,
    input  [3:0]  MASKWREN,
    input         WREN,
    input         CHIPSELECT,
    input         CLOCK,
    input         STANDBY,
    input         SLEEP,
    input         POWEROFF,
    output reg [15:0] DATAOUT
);
    reg [15:0] mem [0:16383];
    integer i;
    initial begin
        for (i = 0; i < 16384; i = i + 1) mem[i] = 16'h0000;
        DATAOUT = 16'h0000;
    end
    always @(posedge CLOCK) begin
        if (CHIPSELECT && !STANDBY && !SLEEP && POWEROFF) begin
            if (WREN) begin
                if (MASKWREN[0]) mem[ADDRESS][3:0]   <= DATAIN[3:0];
                if (MASKWREN[1]) mem[ADDRESS][7:4]   <= DATAIN[7:4];
                if (MASKWREN[2]) mem[ADDRESS][11:8]  <= DATAIN[11:8];
                if (MASKWREN[3]) mem[ADDRESS][15:12] <= DATAIN[15:12];
            end else begin
                DATAOUT <= mem[ADDRESS];
            end
        end
    end
endmodule
